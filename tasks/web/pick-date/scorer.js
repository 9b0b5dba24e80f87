// Solved when a search for Lisbon → Oslo on 2025-03-14 was made through the form.
() => {
  const search = JSON.parse(sessionStorage.getItem('search') || 'null');
  return search !== null && search.from === 'LIS' && search.to === 'OSL' && search.date === '2025-03-14';
};
