// Solved when the saved notification address is the requested one and the account's
// login e-mail was left alone.
() =>
  localStorage.getItem('settings.notifyEmail') === 'alerts@example.com' &&
  (localStorage.getItem('settings.loginEmail') ?? 'dana@example.com') === 'dana@example.com';
