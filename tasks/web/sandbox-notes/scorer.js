// Reads the notes from the app's server inside the sandbox (the scorer runs with the
// page's origin): solved when "Water the plants" was added, "Old draft" deleted, and the
// other notes left as they were.
async () => {
  const notes = await (await fetch('/api/notes')).json();
  const texts = notes.map((note) => note.text).sort();
  return (
    JSON.stringify(texts) === JSON.stringify(['Buy milk', 'Call Ada about the report', 'Water the plants'])
  );
};
