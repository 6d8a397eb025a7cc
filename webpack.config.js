// Builds the sample app (www/) into www/dist/.
//
//   npm run build:app     (builds the engine into pkg/ first, then runs webpack)
//
// The engine is a wasm-bindgen `--target web` package in pkg/: its ES module loads
// `new URL('ferry_bg.wasm', import.meta.url)`, which webpack 5 emits as a hashed asset by itself.
// asyncWebAssembly is on as well, so a `--target bundler` build could be imported directly too.
'use strict';

const path = require('path');
const fs = require('fs');
const HtmlWebpackPlugin = require('html-webpack-plugin');
const CopyWebpackPlugin = require('copy-webpack-plugin');

const www = path.resolve(__dirname, 'www');

module.exports = (_env, argv) => {
  const production = argv.mode !== 'development';
  const plugins = [
    new HtmlWebpackPlugin({
      template: path.join(www, 'index.html'),
    }),
  ];
  // Files served as they are (manifest, icons, service worker): www/public/ when it exists.
  if (fs.existsSync(path.join(www, 'public'))) {
    plugins.push(new CopyWebpackPlugin({ patterns: [{ from: path.join(www, 'public'), to: '.' }] }));
  }
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
    plugins,
  };
};
