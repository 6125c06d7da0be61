// Entry point of every page: marks the current navigation link and loads the page's module.
// Page modules export `render(main)`; the body's data attributes report progress to tests:
// data-ready="1" once the page has drawn what it loaded, data-error when it failed.

const page = document.body.dataset.page;
for (const a of document.querySelectorAll('nav a[data-nav]')) {
  if (a.dataset.nav === page) a.classList.add('active');
}
const main = document.getElementById('main');
// Relative to this module, so the versioned static path and the route prefix are kept.
// /alerts and /rules share a module.
import(`./${page === 'alerts' ? 'rules' : page}.js`)
  .then((m) => m.render(main))
  .catch((e) => {
    main.textContent = `Error: ${e.message}`;
    main.className = 'error';
    document.body.dataset.error = e.message;
    document.body.dataset.ready = '1';
  });
