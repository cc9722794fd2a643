/** `spine emulators`: what `npm run emulators` runs (emulators/cli.ts), the three emulators without the functions. */
import { main } from '../../emulators/cli';

export async function emulators(argv: string[]): Promise<number> {
  return main(argv);
}
