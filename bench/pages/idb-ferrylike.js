import { rawIdb } from './raw-idb.js';
rawIdb('ferrylike');
