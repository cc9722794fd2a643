import * as functions from '@google-cloud/functions-framework';
import { runtime } from '../runtime';
import { createHealthDependencies, createHealthHandler } from './handler';

// Built at load, so a misconfiguration fails the instance's start instead of every request.
const handler = createHealthHandler(createHealthDependencies(runtime()));

functions.http('health', (req, res) => handler(req, res));
