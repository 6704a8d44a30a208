/** Downloads of the files a job wrote, through the API (PackageService.ReadPackageFile,
 * EvalService.ReadEvaluationFile): the chunks are collected into a Blob and saved only once the
 * SHA-256 of the whole file matches the one the daemon sends with the last chunk. A stream that
 * breaks off is asked again from the byte it reached (the request's `offset`), a few times. */
import { Code, ConnectError, errorText } from "./api";
import { download, h } from "./dom";
import type { FileChunk } from "./gen/modx/v1/common_pb";
import { bytes } from "./format";
import { Sha256 } from "./sha256";
import { notify } from "./ui";

export type OpenStream = (offset: bigint, signal: AbortSignal) => AsyncIterable<{ chunk?: FileChunk }>;

const RETRIES = 3;
/** A connection that broke off is worth asking again; a refusal is not. */
const TRANSIENT = new Set([Code.Unavailable, Code.Unknown, Code.Aborted, Code.DeadlineExceeded]);

/** What arrived is not the file the daemon describes. */
export class DownloadError extends Error {}

/** The whole file as a Blob, checked; `onProgress(received, size)` after every chunk. Throws with a
 * sentence when what arrived is not the file. */
export async function fetchFile(open: OpenStream, signal: AbortSignal,
                                onProgress: (received: number, size: number) => void = () => {}): Promise<Blob> {
  const parts: Uint8Array[] = [];
  const hash = new Sha256();
  let received = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const { chunk } of open(BigInt(received), signal)) {
        if (!chunk) continue;
        if (Number(chunk.offset) !== received) throw new DownloadError(`the daemon sent bytes from ${chunk.offset}, expected ${received}`);
        parts.push(chunk.data);
        hash.update(chunk.data);
        received += chunk.data.length;
        const size = Number(chunk.sizeBytes);
        onProgress(received, size);
        if (chunk.sha256) {
          const got = hash.hex();
          if (received !== size || got !== chunk.sha256) {
            throw new DownloadError(`the download does not match the file (SHA-256 ${got}, expected ${chunk.sha256})`);
          }
          return new Blob(parts as BlobPart[]);
        }
      }
      throw new DownloadError(`the stream ended after ${received} bytes without the file's SHA-256`);
    } catch (err) {
      if (signal.aborted || attempt >= RETRIES || err instanceof DownloadError || !TRANSIENT.has(ConnectError.from(err).code)) throw err;
    }
  }
}

/** Fetch, check and save as `name` (the browser's download). */
export async function saveFile(name: string, open: OpenStream, signal: AbortSignal,
                               onProgress?: (received: number, size: number) => void): Promise<void> {
  download(name, await fetchFile(open, signal, onProgress), "application/octet-stream");
}

/** A button that downloads one file: its label shows the progress, a refusal becomes a notice. */
export function downloadButton(label: string, name: string, open: OpenStream, attrs: Record<string, string> = {}): HTMLButtonElement {
  const button: HTMLButtonElement = h("button", { ...attrs, type: "button", onclick: async () => {
    button.disabled = true;
    try {
      await saveFile(name, open, new AbortController().signal, (got, size) => {
        button.textContent = `${label} · ${size ? Math.floor((100 * got) / size) : 100}% (${bytes(got)})`;
      });
    } catch (err) {
      notify(err instanceof DownloadError ? err.message : errorText(err));
    } finally {
      button.textContent = label;
      button.disabled = false;
    }
  } }, label);
  return button;
}
