// Solved when the only move made was "Old pricing draft" into the trash, and the other five
// documents are still on the board.
() => {
  const moves = JSON.parse(sessionStorage.getItem('moves') || '[]');
  const left = document.querySelectorAll('#cards .card').length;
  if (moves.length === 0) return { score: 0, note: 'nothing was moved' };
  const ok =
    moves.length === 1 && moves[0].card === 'card-old-pricing' && moves[0].zone === 'trash' && left === 5;
  return ok
    ? true
    : { score: 0, note: `moves: ${JSON.stringify(moves)}; ${left} documents left on the board` };
};
