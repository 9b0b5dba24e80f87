// Solved when the applied settings are brightness 70 % with the contrast left at 50 %.
() => {
  const applied = JSON.parse(sessionStorage.getItem('display') || 'null');
  if (applied === null) return { score: 0, note: 'nothing was applied' };
  const ok = applied.brightness === 70 && applied.contrast === 50;
  return ok
    ? true
    : { score: 0, note: `applied brightness ${applied.brightness} %, contrast ${applied.contrast} %` };
};
