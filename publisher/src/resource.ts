/**
 * One resource's announcements, numbered as the SDK's live views need them
 * (docs/protocol.md §11): every change carries a `version` one above the
 * last, and a deletion is a change too, with the next version; nothing
 * follows it. The SDK tells a duplicate (same version), a stale message
 * (lower) and a lost one (a skipped version: reload) apart by these numbers.
 */
import type { PublishableBody } from '@topicgate/shared';
import { PublishErrorCode } from './codes.js';
import type { BodyOf, ResourceBody, ResourceParams, ResourceTemplate } from './conventions.js';
import { PublishError } from './errors.js';
import { topicKey } from './topic-key.js';

/**
 * Takes a message now, or says at once why not (closed, buffer full, an
 * invalid body): a helper numbers a version or a line only once it is taken,
 * so that a retry after a refusal reuses the number.
 */
export type Send = (key: string, body: PublishableBody) => { taken: true; confirmed: Promise<void> } | { taken: false; error: unknown };

/**
 * @example
 * const build = publisher.resource({ id: 42 }, { version: row.version }); // the version already published
 * await build.update('builds.{id}.finished', { ...row }); // row.version, when given, must be the next one
 * await build.delete('builds.{id}.deleted', { id: 42, deleted: true }); // the next version again
 */
export class ResourcePublisher<T, Names extends string> {
  readonly #send: Send;
  readonly #params: ResourceParams;
  #version: number;
  #deleted = false;

  constructor(send: Send, params: ResourceParams, version = 0) {
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new TypeError(`resource(): version must be the last version published, an integer ≥ 0 (0: none yet), got ${version}`);
    }
    this.#send = send;
    this.#params = params;
    this.#version = version;
  }

  /** The version of the last change announced (or given at creation). */
  get version(): number {
    return this.#version;
  }

  /** Announces a change: publishes `body` with the next version to `template` filled with the resource's parameters. */
  update<K extends ResourceTemplate<T, Names>>(template: K, body: ResourceBody<BodyOf<T, K>>): Promise<void> {
    return this.#announce(template, body as PublishableBody, 'update');
  }

  /** Announces the deletion, with the next version; the resource takes no change afterwards. */
  delete<K extends ResourceTemplate<T, Names>>(template: K, body: ResourceBody<BodyOf<T, K>>): Promise<void> {
    return this.#announce(template, body as PublishableBody, 'delete');
  }

  #announce(template: string, body: PublishableBody, kind: 'update' | 'delete'): Promise<void> {
    const which = `the resource ${JSON.stringify(this.#params)}`;
    if (this.#deleted) {
      return Promise.reject(
        new PublishError(
          PublishErrorCode.OutOfSequence,
          `${which} was deleted at version ${this.#version}; a later ${kind} would make the SDK's views reload (it looks like the resource reappearing). ` +
            'Create a new resource() for a new resource.',
        ),
      );
    }
    const next = this.#version + 1;
    const given = body['version'];
    if (given !== undefined && given !== next) {
      return Promise.reject(
        new PublishError(
          PublishErrorCode.OutOfSequence,
          `${which}: this ${kind} carries version ${JSON.stringify(given)}, but the last one published was ${this.#version}, so it must be ${next}. ` +
            'Versions grow by exactly one per change (the SDK reloads on a gap and ignores a repeat): bump the version with each change in your database, ' +
            'or leave `version` out and let the helper set it.',
        ),
      );
    }
    let key: string;
    try {
      key = topicKey(template, this.#params);
    } catch (err) {
      return Promise.reject(err);
    }
    const sent = this.#send(key, { ...body, version: next });
    if (!sent.taken) return Promise.reject(sent.error);
    // Numbered when taken, not when the broker confirms: calls made back to back get consecutive versions.
    this.#version = next;
    if (kind === 'delete') this.#deleted = true;
    return sent.confirmed;
  }
}
