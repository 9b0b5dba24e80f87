// Solved when seat 14C was confirmed.
() => {
  const seat = sessionStorage.getItem('seat');
  if (seat === null) return { score: 0, note: 'no seat was confirmed' };
  return seat === '14C' ? true : { score: 0, note: `seat ${seat} was confirmed` };
};
