// Solved when q3-budget-draft.xlsx was deleted and nothing else: the other five files are
// still listed.
() => {
  const listed = [...document.querySelectorAll('#files tr')].map((row) => row.dataset.file);
  const deleted = JSON.parse(sessionStorage.getItem('deleted') || '[]');
  const others = [
    'q3-budget.xlsx',
    'vendor-contracts.pdf',
    'expense-policy.docx',
    'payroll-export.csv',
    'q2-budget-final.xlsx',
  ];
  if (listed.includes('q3-budget-draft.xlsx'))
    return { score: 0, note: 'q3-budget-draft.xlsx is still listed' };
  const ok =
    deleted.length === 1 &&
    deleted[0] === 'q3-budget-draft.xlsx' &&
    others.every((name) => listed.includes(name)) &&
    listed.length === 5;
  return ok ? true : { score: 0, note: `deleted: ${deleted.join(', ')}` };
};
