// Solved when the first button the agent clicked is "Confirm".
() => document.body.dataset.firstClick === 'Confirm';
