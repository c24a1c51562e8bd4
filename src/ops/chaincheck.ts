import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LayerHeader, QemuImg } from '../host/qemuimg.js';
import { ProcessError } from '../host/runner.js';

export interface ChainWalk {
  /** Top first, as far down as the chain could be read. */
  readonly layers: readonly LayerHeader[];
  readonly problems: readonly string[];
}

/** The backing path as qemu resolves it: relative names are relative to the overlay's folder. */
export function resolveBacking(overlay: string, backing: string): string {
  return path.isAbsolute(backing) ? backing : path.join(path.dirname(overlay), backing);
}

/**
 * Reads a chain one header at a time, so a missing or unreadable layer becomes a problem naming
 * it instead of stopping the whole check: every backing present, formats as recorded, sizes sane.
 */
export async function walkChain(
  qemuImg: QemuImg,
  top: string,
  label: string,
  /** The top's format as the definition names it (never probed); layers below are probed, so a format other than the recorded one is found. */
  topFormat?: string,
): Promise<ChainWalk> {
  const layers: LayerHeader[] = [];
  const problems: string[] = [];
  let file: string | undefined = top;
  let above: LayerHeader | undefined;
  while (file !== undefined) {
    if (layers.some((l) => l.filename === file)) {
      problems.push(`${label}: the chain loops back to ${file}`);
      break;
    }
    if (!existsSync(file)) {
      problems.push(
        above === undefined
          ? `${label}: ${file} is missing`
          : `${label}: backing file ${file} of ${above.filename} is missing`,
      );
      break;
    }
    let header: LayerHeader;
    try {
      header = await qemuImg.header(file, above === undefined ? topFormat : undefined);
    } catch (error) {
      if (!(error instanceof ProcessError)) throw error;
      problems.push(`${label}: cannot read ${file}: ${error.stderr.trim() || error.message}`);
      break;
    }
    if (above !== undefined) {
      if (above.backingFormat !== undefined && above.backingFormat !== header.format)
        problems.push(
          `${label}: ${above.filename} records its backing ${file} as ${above.backingFormat}, but it is ${header.format}`,
        );
      if (header.virtualSize > above.virtualSize)
        problems.push(
          `${label}: ${file} (${header.virtualSize} bytes) is larger than its overlay ${above.filename} (${above.virtualSize} bytes)`,
        );
    }
    layers.push(header);
    above = header;
    file = header.backingFilename === undefined ? undefined : resolveBacking(file, header.backingFilename);
  }
  return { layers, problems };
}

/** `qemu-img check` of each layer; leaked clusters (exit 3) waste space but lose nothing. */
export async function checkLayers(
  qemuImg: QemuImg,
  layers: readonly LayerHeader[],
  label: string,
): Promise<string[]> {
  const problems: string[] = [];
  for (const layer of layers) {
    if (layer.format !== 'qcow2') continue;
    const result = await qemuImg.check(layer.filename, layer.format);
    if (result.exitCode !== 0 && result.exitCode !== 3) {
      const detail = result.output
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(0, 4)
        .join('; ');
      problems.push(`${label}: qemu-img check of ${layer.filename} failed: ${detail}`);
    }
  }
  return problems;
}
