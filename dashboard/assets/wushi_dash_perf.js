/*
 * Skip Dash's no-op RESET_COMPONENT_STATE actions (docs/performance.md, "Town switch").
 *
 * Dash 4's renderer dispatches one RESET_COMPONENT_STATE per component each time a callback
 * replaces a component's children (in a useEffect of every newly rendered wrapper), to drop
 * "layoutHashes" entries recorded under the new component's path. Almost always there are none,
 * but the reducer still returns a new object, so every dispatch makes Redux run the selector
 * of every component on the page: a town switch (84 new tiles) or one live-feed update
 * (120 new feed entries) cost ~100 k selector calls and hundreds of ms of main thread.
 * (Tiles and feed entries are HTML, one component per block (layouts/components.py): there are
 * far fewer such resets; a page's first render and a language switch still cause them.)
 *
 * This wraps the store's dispatch and drops such an action when no key of layoutHashes starts
 * with the path, which is exactly when the reducer would remove nothing (it removes the keys
 * starting with ``itempath.join(',')``). Every other action passes unchanged.
 *
 * It depends on Dash 4.4's internals (``window.store``, the action's type and payload, the
 * reducer in dash-renderer's wrapping/reducers): re-check it when upgrading Dash. If they
 * change, the guard below leaves the store alone and Dash just does its usual work.
 */
(function () {
    'use strict';

    function patch(store) {
        if (!store || typeof store.dispatch !== 'function' || store.__wushiSkipNoopReset) {
            return;
        }
        var dispatch = store.dispatch;
        store.dispatch = function (action) {
            var path = action && action.type === 'RESET_COMPONENT_STATE' &&
                action.payload && action.payload.itempath;
            if (Array.isArray(path)) {
                var hashes = (store.getState() || {}).layoutHashes;
                if (hashes && typeof hashes === 'object') {
                    var prefix = path.join(',');
                    for (var key in hashes) {
                        if (key.indexOf(prefix) === 0) {
                            return dispatch.apply(this, arguments);
                        }
                    }
                    return action; // nothing to reset: skip the store update
                }
            }
            return dispatch.apply(this, arguments);
        };
        store.__wushiSkipNoopReset = true;
    }

    // The renderer (loaded after the assets) assigns window.store when it creates its store.
    var current = window.store;
    patch(current);
    try {
        Object.defineProperty(window, 'store', {
            configurable: true,
            enumerable: true,
            get: function () { return current; },
            set: function (value) { current = value; patch(value); }
        });
    } catch (e) {
        // Could not watch the assignment: leave Dash as it is.
    }
})();
