import { Router } from 'express';
import type { StorageService } from '../service';

/** Emulator-only endpoints under `/_emulator`: health, write counters, reset. */
export function adminRoutes(service: StorageService): Router {
  const router = Router();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/stats', (_req, res) => {
    res.json(service.statsSnapshot());
  });
  router.post('/stats/reset', (_req, res) => {
    service.resetStats();
    res.status(204).end();
  });
  router.post('/reset', async (_req, res) => {
    await service.reset();
    res.status(204).end();
  });
  return router;
}
