// 1 when the form was sent with exactly the requested values, else 0.
() => {
  const sent = sessionStorage.getItem('signup');
  if (!sent) return 0;
  const data = JSON.parse(sent);
  return data.name === 'Ada Lovelace' &&
    data.email === 'ada@example.org' &&
    data.plan === 'monthly' &&
    data.terms === true
    ? 1
    : 0;
};
