// Solved when the cache was cleared while the saved passwords and the cookies were kept.
() => {
  const state = JSON.parse(sessionStorage.getItem('storage') || 'null');
  if (state === null) return { score: 0, note: 'nothing was cleared' };
  if (state.cache !== 0) return { score: 0, note: 'the cache was not cleared' };
  if (state.passwords !== 12) return { score: 0, note: 'the saved passwords were removed' };
  if (state.cookies !== 94) return { score: 0, note: 'the cookies were cleared' };
  return true;
};
