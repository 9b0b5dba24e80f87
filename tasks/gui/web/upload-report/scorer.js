// Solved when report.csv was read by the page with its content intact (its 12 rows add up
// to 546480) and sent.
() => {
  const sent = JSON.parse(sessionStorage.getItem('report') || 'null');
  if (sent === null) return { score: 0, note: 'no report was sent' };
  const ok =
    sent.name === 'report.csv' &&
    sent.header === 'region,month,revenue' &&
    sent.rows === 12 &&
    sent.total === 546480;
  return ok ? true : { score: 0, note: `sent ${JSON.stringify(sent)}` };
};
