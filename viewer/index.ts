/**
 * The web viewer: `serveViewer` serves, on loopback, pages over the runs and training
 * outputs under a folder — run tables, episode lists that filter, sort and search,
 * transcripts with screenshots, token views, comparisons, learning curves — reading each
 * run through its index, never whole. See README.md in this folder.
 */
export { serveViewer, episodeQuery, type RunningViewer, type ViewerOptions } from './server.ts';
export { Catalog, type CatalogRun, type CatalogTraining } from './catalog.ts';
