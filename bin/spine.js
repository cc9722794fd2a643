#!/usr/bin/env node
'use strict';
// The package runs from source: tsx compiles the TypeScript entry as it is loaded (and caches it).
require('tsx/cjs');
const { main } = require('../cli/main.ts');
// Exits explicitly: idle keep-alive sockets of the Google clients would hold the process open.
main(process.argv.slice(2)).then((code) => process.exit(code));
