// The inventory, as the warehouse system reports it.
window.INVENTORY = [
  { sku: 'HB-M6', name: 'Hex bolt M6', location: 'A-03', stock: 4210 },
  { sku: 'HB-M8', name: 'Hex bolt M8', location: 'A-04', stock: 1375 },
  { sku: 'HB-M10', name: 'Hex bolt M10', location: 'A-05', stock: 980 },
  { sku: 'HN-M8', name: 'Hex nut M8', location: 'B-01', stock: 5120 },
  { sku: 'WS-M8', name: 'Washer M8', location: 'B-02', stock: 8830 },
  { sku: 'CS-4x40', name: 'Wood screw 4×40', location: 'C-11', stock: 2600 },
  { sku: 'AN-6', name: 'Wall anchor 6 mm', location: 'C-12', stock: 1437 },
];
