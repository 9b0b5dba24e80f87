// Shared by the shop's pages: the catalogue, the cart and the orders live in localStorage.
window.shop = {
  async products() {
    const response = await fetch('/products.json');
    return response.json();
  },
  cart() {
    return JSON.parse(localStorage.getItem('cart') || '[]');
  },
  saveCart(cart) {
    localStorage.setItem('cart', JSON.stringify(cart));
  },
  money(value) {
    return `$${value.toFixed(2)}`;
  },
  updateBadge() {
    const badge = document.getElementById('cart-count');
    if (badge) badge.textContent = String(this.cart().reduce((sum, line) => sum + line.quantity, 0));
  },
};
document.addEventListener('DOMContentLoaded', () => window.shop.updateBadge());
