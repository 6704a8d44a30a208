/** The studio's only way to the daemon: generated Connect clients for the modx.v1 services on the
 * page's own origin (the daemon's web listener), with the user's Bearer token when there is one. */
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { EvalService } from "./gen/modx/v1/eval_pb";
import { InferenceService } from "./gen/modx/v1/inference_pb";
import { PackageService } from "./gen/modx/v1/package_pb";
import { SystemService } from "./gen/modx/v1/system_pb";
import { TrainingService } from "./gen/modx/v1/training_pb";

const TOKEN_KEY = "modx.token";

/** The token lives in sessionStorage: it survives a reload but not the tab, and no cookie
 * carries it to the daemon behind the user's back. */
export const token = {
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set: (value: string): void => {
    if (value) sessionStorage.setItem(TOKEN_KEY, value.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

const bearer: Interceptor = (next) => async (req) => {
  const value = token.get();
  if (value) req.header.set("Authorization", `Bearer ${value}`);
  return next(req);
};

/** Listeners told when a call was refused for want of a (valid) token. */
const authListeners = new Set<(message: string) => void>();
export function onAuthNeeded(listener: (message: string) => void): void {
  authListeners.add(listener);
}

const authWatch: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code === Code.Unauthenticated) authListeners.forEach((l) => l(e.rawMessage));
    throw err;
  }
};

const transport = createConnectTransport({
  baseUrl: location.origin,
  interceptors: [authWatch, bearer],
  jsonOptions: { ignoreUnknownFields: true },
});

export const training = createClient(TrainingService, transport);
export const system = createClient(SystemService, transport);
export const evals = createClient(EvalService, transport);
export const inference = createClient(InferenceService, transport);
export const packages = createClient(PackageService, transport);

/** The daemon's sentence for a failed call (it names the field, file or line at fault). */
export function errorText(err: unknown): string {
  if (err instanceof Error && err.name === "AbortError") return "";
  const e = ConnectError.from(err);
  return e.code === Code.Canceled ? "" : e.rawMessage || e.message;
}

export function isCanceled(err: unknown): boolean {
  if (err instanceof Error && err.name === "AbortError") return true;
  return ConnectError.from(err).code === Code.Canceled;
}

export { Code, ConnectError };
