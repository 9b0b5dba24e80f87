// A small to-do app: a page and a JSON API, state in memory. Serves on 127.0.0.1:$PORT.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const page = readFileSync(new URL('./index.html', import.meta.url));
const todos = [
  { id: 1, title: 'Call the plumber', done: false },
  { id: 2, title: 'Renew the passport', done: false },
  { id: 3, title: 'Water the plants', done: true },
];
let nextId = 4;

function readJson(request) {
  return new Promise((resolve) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      try {
        resolve(JSON.parse(body || '{}'));
      } catch {
        resolve({});
      }
    });
  });
}

function send(response, status, value) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(value));
}

createServer(async (request, response) => {
  const url = new URL(request.url, 'http://localhost');
  if (request.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(page);
  } else if (url.pathname === '/api/todos' && request.method === 'GET') {
    send(response, 200, todos);
  } else if (url.pathname === '/api/todos' && request.method === 'POST') {
    const { title } = await readJson(request);
    if (typeof title !== 'string' || title.trim() === '')
      return send(response, 400, { error: 'title required' });
    const todo = { id: nextId++, title: title.trim(), done: false };
    todos.push(todo);
    send(response, 201, todo);
  } else if (url.pathname.startsWith('/api/todos/') && request.method === 'PATCH') {
    const todo = todos.find((item) => item.id === Number(url.pathname.split('/').pop()));
    if (!todo) return send(response, 404, { error: 'no such to-do' });
    const { done } = await readJson(request);
    if (typeof done === 'boolean') todo.done = done;
    send(response, 200, todo);
  } else {
    send(response, 404, { error: 'not found' });
  }
}).listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
