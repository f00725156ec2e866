// load-canonicalize.js -- the npm `canonicalize` package, the reference
// JCS implementation both bench_canonicalize.js and crosscheck.js use.
//
// canonicalize 5.x calls String.prototype.isWellFormed, which Node has
// from 20 on; on an older Node (Debian 12 ships 18) it is added here, with
// the same meaning: false when the string holds a lone surrogate.

if (typeof String.prototype.isWellFormed !== 'function') {
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  // eslint-disable-next-line no-extend-native
  Object.defineProperty(String.prototype, 'isWellFormed', {
    value: function isWellFormed() { return !lone.test(String(this)); },
    configurable: true,
    writable: true,
  });
}

// imported after the method exists
const { default: canonicalize } = await import('canonicalize');

export default canonicalize;
