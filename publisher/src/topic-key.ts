/**
 * Templates to keys at run time: `'builds.{id}.finished'` with `{ id: 42 }`
 * is `builds.42.finished` (the type side is `TopicKey` in `@topicgate/shared`).
 */
import { routingKeyError } from '@topicgate/shared';

/**
 * Fills every `{name}` word of `template` with `params[name]`. Throws a
 * `TypeError` when a parameter is missing or its value is not one valid word:
 * a value with a `.` would silently move the message to another topic.
 */
export function topicKey(template: string, params: Readonly<Record<string, string | number>>): string {
  const key = template
    .split('.')
    .map((word) => {
      const name = /^\{(.+)\}$/.exec(word)?.[1];
      if (name === undefined) return word;
      const value = params[name];
      if (value === undefined) throw new TypeError(`topic "${template}" needs a value for {${name}}; got ${JSON.stringify(params)}`);
      const text = String(value);
      // routingKeyError alone would accept "4.2": a valid key, of two words.
      if (text.includes('.') || routingKeyError(text) !== null) {
        throw new TypeError(`{${name}} of topic "${template}" must be one routing-key word (letters, digits, "_", ":", "-"; no "."), got ${JSON.stringify(text)}`);
      }
      return text;
    })
    .join('.');
  const error = routingKeyError(key);
  if (error) throw new TypeError(error);
  return key;
}
