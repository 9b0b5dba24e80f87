// 0.8 for ordering exactly the right item (one pair, size 42), plus 0.2 when the order also
// carries the right name and address. Orders are kept by the shop in localStorage.
() => {
  const orders = JSON.parse(localStorage.getItem('orders') || '[]');
  if (orders.length !== 1) return 0;
  const [order] = orders;
  const lines = order.lines || [];
  const right =
    lines.length === 1 && lines[0].id === 'trailblazer' && lines[0].size === '42' && lines[0].quantity === 1;
  if (!right) return 0;
  const delivery = order.customer === 'Sam Rivera' && order.address === '12 Harbour Road';
  return delivery ? 1 : 0.8;
};
