// Solved when one reorder was sent: the right item, and the quantity read from the table.
() => {
  const orders = JSON.parse(localStorage.getItem('reorders') || '[]');
  return orders.length === 1 && orders[0].sku === 'HB-M8' && orders[0].quantity === 1375;
};
