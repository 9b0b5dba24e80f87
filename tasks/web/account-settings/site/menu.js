// The top bar of every page: a logo and an Account menu that opens on hover.
document.body.insertAdjacentHTML(
  'afterbegin',
  `<nav>
    <a href="/index.html">Ledgerly</a>
    <div class="menu">
      <button type="button" aria-haspopup="true">Account</button>
      <div class="items">
        <a href="/profile.html">Profile</a>
        <a href="/settings.html">Settings</a>
        <a href="/index.html">Sign out</a>
      </div>
    </div>
  </nav>`,
);
