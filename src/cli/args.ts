// Argument parsers shared by the `resnet` commands (commander's InvalidArgumentError → exit 2).

import { InvalidArgumentError } from 'commander';

export function parsePositiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer.`);
    }
    return n;
  };
}
