// Solved when the Q3 report was downloaded and no subscription was made.
() => sessionStorage.getItem('download') === 'q3' && sessionStorage.getItem('subscribed') === null;
