// Solved when the red circle was hit, on the board of this page's seed, before any decoy
// shape was (clicks on empty canvas do not count against the agent).
() => {
  const seed = Number((/seed=(\d+)/.exec(location.hash) || [])[1] || 0);
  const clicks = JSON.parse(sessionStorage.getItem('canvas-clicks') || '[]');
  const onShapes = clicks.filter((click) => click.seed === seed && click.shape !== null);
  if (onShapes.length === 0) return { score: 0, note: 'no shape was clicked' };
  if (onShapes[0].shape !== 'red circle')
    return { score: 0, note: `the first shape clicked was the ${onShapes[0].shape}` };
  return true;
};
