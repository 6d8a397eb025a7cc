// Builds the sample app (www/) into www/dist/.
//
//   npm run build:app     (builds the engine into pkg/ first, then runs webpack)
//
// The engine is a wasm-bindgen `--target web` package in pkg/: its ES module loads
// `new URL('ferry_bg.wasm', import.meta.url)`, which webpack 5 emits as a hashed asset by itself.
// asyncWebAssembly is on as well, so a `--target bundler` build could be imported directly too.
// Also emitted: styles.css, manifest.webmanifest, icons/, and the service worker sw.js with
// its precache list (ServiceWorkerPlugin below).
'use strict';

const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const HtmlWebpackPlugin = require('html-webpack-plugin');
const CopyWebpackPlugin = require('copy-webpack-plugin');

const www = path.resolve(__dirname, 'www');

/**
 * Emits the service worker (www/sw.js) with the list of files to precache — every file of the
 * build but source maps, licence notes and the worker itself — and a hash of their contents
 * as the cache version.
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
          const files = Object.keys(assets)
            .filter((f) => !/\.(map|LICENSE\.txt)$/.test(f) && f !== 'sw.js' && !f.endsWith('.mjs'))
            .sort();
          const hash = crypto.createHash('sha256');
          for (const f of files) hash.update(f).update('\0').update(assets[f].buffer());
          const urls = ['/', ...files.map((f) => `/${f}`)];
          const source = fs.readFileSync(template, 'utf8')
            .replace('self.__FERRY_PRECACHE__', JSON.stringify(urls))
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
        ],
      }),
      new ServiceWorkerPlugin(),
    ],
  };
};
