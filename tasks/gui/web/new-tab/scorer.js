// Solved when the sign-in went through: the request was approved on the security page and
// then "Continue" was pressed on the sign-in page (localStorage is shared by both tabs).
() => {
  const request = localStorage.getItem('pending-request');
  if (!request) return { score: 0, note: 'no sign-in request was made' };
  if (localStorage.getItem('approved-request') !== request)
    return { score: 0, note: 'the request was not approved' };
  if (localStorage.getItem('signed-in') !== request)
    return { score: 0, note: 'approved, but Continue was not pressed afterwards' };
  return true;
};
