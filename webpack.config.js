// Builds the sample app (www/) into www/dist/.
//
//   npm run build:app     (builds the engine into pkg/ first, then runs webpack)
//
// The engine is a wasm-bindgen `--target web` package in pkg/: its ES module loads
// `new URL('ferry_bg.wasm', import.meta.url)`, which webpack 5 emits as a hashed asset by itself.
// asyncWebAssembly is on as well, so a `--target bundler` build could be imported directly too.
// Also emitted: styles.css, manifest.webmanifest, icons/, the service worker sw.js with its
// precache list (ServiceWorkerPlugin below), and ferry/, the package's ES modules the module
// service worker imports for sync with the app closed.
'use strict';

const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const HtmlWebpackPlugin = require('html-webpack-plugin');
const CopyWebpackPlugin = require('copy-webpack-plugin');

const www = path.resolve(__dirname, 'www');

/**
 * Emits the service worker (www/sw.js) with the list of files to precache — every file of the
 * build but source maps, licence notes, the worker itself and its ferry/ modules — the URL of
 * the engine's WebAssembly, and a hash of the contents as the cache version.
 */
class ServiceWorkerPlugin {
  apply(compiler) {
    const { Compilation, sources } = compiler.webpack;
    compiler.hooks.thisCompilation.tap('ServiceWorkerPlugin', (compilation) => {
      const template = path.join(www, 'sw.js');
      compilation.fileDependencies.add(template);
      compilation.hooks.processAssets.tap(
        { name: 'ServiceWorkerPlugin', stage: Compilation.PROCESS_ASSETS_STAGE_REPORT - 1 },
        (assets) => {
          const emitted = Object.keys(assets)
            .filter((f) => !/\.(map|LICENSE\.txt)$/.test(f) && f !== 'sw.js' && !f.endsWith('.mjs'))
            .sort();
          // The worker's copy of the package (ferry/) is not precached: it is the worker's own
          // module graph, which the browser stores with the worker when it installs. It still
          // counts in the version, so a new engine is a new worker.
          const files = emitted.filter((f) => !f.startsWith('ferry/'));
          const hash = crypto.createHash('sha256');
          for (const f of emitted) hash.update(f).update('\0').update(assets[f].buffer());
          const urls = ['/', ...files.map((f) => `/${f}`)];
          // The page's engine (hashed name): the worker instantiates the same file from the
          // precache rather than downloading a second copy.
          const wasm = files.filter((f) => /^ferry_bg\.[0-9a-f]+\.wasm$|^ferry_bg\.wasm$/.test(f));
          if (wasm.length !== 1) {
            compilation.errors.push(new Error(`ServiceWorkerPlugin: expected one ferry_bg wasm asset, found ${JSON.stringify(wasm)}`));
            return;
          }
          const source = fs.readFileSync(template, 'utf8')
            .replace('self.__FERRY_PRECACHE__', JSON.stringify(urls))
            .replace('self.__FERRY_WASM__', JSON.stringify(`/${wasm[0]}`))
            .replace('self.__FERRY_VERSION__', JSON.stringify(hash.digest('hex').slice(0, 16)));
          compilation.emitAsset('sw.js', new sources.RawSource(source));
        },
      );
    });
  }
}

module.exports = (_env, argv) => {
  const production = argv.mode !== 'development';
  return {
    entry: path.join(www, 'src', 'index.js'),
    output: {
      path: path.join(www, 'dist'),
      filename: production ? '[name].[contenthash:8].js' : '[name].js',
      assetModuleFilename: production ? '[name].[contenthash:8][ext]' : '[name][ext]',
      publicPath: '/',
      clean: true,
    },
    experiments: {
      asyncWebAssembly: true,
      topLevelAwait: true,
    },
    resolve: {
      alias: { ferry: path.resolve(__dirname, 'pkg') },
    },
    devtool: production ? 'source-map' : 'eval-cheap-module-source-map',
    performance: { hints: false },
    plugins: [
      new HtmlWebpackPlugin({ template: path.join(www, 'index.html') }),
      // Files served as they are: the stylesheet, the web app manifest and the icons.
      new CopyWebpackPlugin({
        patterns: [
          { from: path.join(www, 'styles.css'), to: 'styles.css' },
          { from: path.join(www, 'manifest.webmanifest'), to: 'manifest.webmanifest' },
          { from: path.join(www, 'icons'), to: 'icons', globOptions: { ignore: ['**/*.mjs'] } },
          // The package as ES modules for the service worker (sw.js imports ferry/sw.js): sync
          // with the app closed runs the same engine there. Not precached (see below); its
          // WebAssembly is left out: the worker uses the page's precached copy.
          {
            from: path.resolve(__dirname, 'pkg'),
            to: 'ferry',
            globOptions: {
              ignore: ['**/*.d.ts', '**/package.json', '**/README.md', '**/CHANGELOG.md', '**/LICENSE-*',
                '**/react.js', '**/vue.js', '**/devtools.js', '**/*.wasm'],
            },
          },
        ],
      }),
      new ServiceWorkerPlugin(),
    ],
  };
};
