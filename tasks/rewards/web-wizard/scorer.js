// A third for each step of the wizard done right, in order: the shipping address, Express
// delivery, the order placed (with both before it right). 0 on the untouched page.
() => {
  const read = (key) => JSON.parse(sessionStorage.getItem(key) || 'null');
  const shipping = read('wizard.shipping');
  const delivery = read('wizard.delivery');
  const order = read('wizard.order');
  const steps = [
    shipping !== null && shipping.name === 'Grace Hopper' && shipping.city === 'Arlington',
    delivery !== null && delivery.speed === 'express',
    order !== null && order.placed === true,
  ];
  let done = 0;
  while (done < steps.length && steps[done]) done++;
  return done / steps.length;
};
