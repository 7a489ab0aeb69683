// Renders public/sample.png, the demo's sample image: a hot-air balloon over hills, drawn here
// as SVG and rasterised by sharp (so it is ours to ship, under the project's licence). An opaque
// RGB PNG with no colour profile, so that a browser's canvas and Node's decoder see the same bytes.
//
//   node examples/web/make_sample.mjs

import sharp from 'sharp';
import { fileURLToPath } from 'node:url';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="256" viewBox="0 0 320 256">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#3b82c4"/><stop offset="1" stop-color="#cfe8f7"/>
    </linearGradient>
    <linearGradient id="envelope" x1="0" y1="0" x2="1" y2="0">
      <stop offset="0" stop-color="#b91c1c"/><stop offset="0.5" stop-color="#f97316"/><stop offset="1" stop-color="#b91c1c"/>
    </linearGradient>
  </defs>
  <rect width="320" height="256" fill="url(#sky)"/>
  <circle cx="262" cy="52" r="22" fill="#fde68a"/>
  <ellipse cx="70" cy="60" rx="38" ry="10" fill="#ffffff" opacity="0.8"/>
  <ellipse cx="96" cy="52" rx="26" ry="9" fill="#ffffff" opacity="0.8"/>
  <path d="M0 200 Q 60 150 130 190 T 320 180 L 320 256 L 0 256 Z" fill="#4d7c0f"/>
  <path d="M0 225 Q 90 190 170 222 T 320 215 L 320 256 L 0 256 Z" fill="#365314"/>
  <path d="M160 30 C 110 30 104 92 132 122 L 148 146 L 172 146 L 188 122 C 216 92 210 30 160 30 Z" fill="url(#envelope)"/>
  <path d="M160 30 C 146 40 140 96 152 146 M160 30 C 174 40 180 96 168 146" stroke="#fde047" stroke-width="5" fill="none"/>
  <line x1="150" y1="146" x2="153" y2="160" stroke="#44403c" stroke-width="1.5"/>
  <line x1="170" y1="146" x2="167" y2="160" stroke="#44403c" stroke-width="1.5"/>
  <rect x="151" y="160" width="18" height="13" rx="2" fill="#92400e"/>
</svg>`;

const out = fileURLToPath(new URL('./public/sample.png', import.meta.url));
const info = await sharp(Buffer.from(svg)).removeAlpha().png({ compressionLevel: 9 }).toFile(out);
console.log(`${out}: ${info.width}x${info.height}, ${info.size} bytes`);
