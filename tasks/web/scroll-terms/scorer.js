// Solved when the terms were accepted (after being read to the end) and the user went on.
() => sessionStorage.getItem('terms') === 'accepted' && document.title === 'Your account';
