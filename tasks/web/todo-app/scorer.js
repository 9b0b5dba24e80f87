// Reads the app's state from its server (the scorer runs with the page's origin):
// solved when "Buy oat milk" was added, "Call the plumber" is done, and nothing else changed.
async () => {
  const response = await fetch('/api/todos');
  const todos = await response.json();
  const byTitle = new Map(todos.map((todo) => [todo.title, todo]));
  return (
    todos.length === 4 &&
    byTitle.get('Buy oat milk')?.done === false &&
    byTitle.get('Call the plumber')?.done === true &&
    byTitle.get('Renew the passport')?.done === false &&
    byTitle.get('Water the plants')?.done === true
  );
};
