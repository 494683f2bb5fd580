#!/usr/bin/env node
/**
 * `kubectl edge …`: kubectl runs an executable named `kubectl-edge` found on PATH for `kubectl edge`, with the
 * remaining arguments. It is edgectl under that name (`kubectl edge logs …`, `kubectl edge exec … -- …`).
 */
import './main.js';
