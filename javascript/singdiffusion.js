// SingDiffusion panel: hints on its controls, and presets that follow the checkpoint.
//
// While "follow the preset" is on, the panel shows the values a generation will use: when the page's checkpoint
// changes (and once at load) the hidden "load preset" button of each tab is pressed; its Python handler answers
// with the checkpoint's preset, or the panel's defaults where none is saved. Editing a value by hand switches
// following off, so what is shown is what is used. Only trusted (user) events count: the webui's own scripts
// and Gradio's updates change the same inputs programmatically.

(function() {
    // Shown by hints.js as tooltips on elements whose text matches a key; keys other extensions set first win.
    // (Buttons get theirs from Python's tooltip=: Gradio puts a space before a button's text.)
    var hints = {
        "SingDiffusion": "Replace the Gaussian start of sampling with the module's DDIM step.",
        "Module": "A module in models/SingDiffusion; empty: the default from Settings.",
        "Module guidance": "The module's own CFG. SingDiffusion modules: normalized, 0 follows the CFG scale, ≤ 1 the prompt alone. One More Step modules: plain CFG against \"\", 0 is its default 1.",
        "Text encoder": "module: the module's own text encoder on the plain prompt (as trained); host: the checkpoint's own conditioning (emphasis, embeddings) where it is what the module reads; auto: host where it is, else module.",
        "Follow the preset for this checkpoint": "Use the values saved for the checkpoint in use, if any.",
        "Module strength": "Scales the module's pull: 0 is the plain Gaussian start, 1 the paper's method, above 1 a stronger pull toward the prompt's brightness.",
        "Module prompt": "What the module reads instead of the prompt (One More Step's low-frequency control: prompt \"a car\", module prompt \"red car\"); empty: the prompt.",
        "Modules": "The installed modules: hash, latent channels, cross-attention width, size; convert a release folder's .bin to .safetensors.",
    };
    if (typeof titles !== "undefined") {
        for (var key in hints) {
            if (!(key in titles)) titles[key] = hints[key]; /*global titles*/
        }
    }
})();

var singdiffusionTabs = ["txt2img", "img2img"];
var singdiffusionShownCheckpoint = null;

// Forge's own "Checkpoint" dropdown (class model_selection in the quicksettings) sets the option on the server only:
// the page's opts keep the checkpoint it loaded with, so there the dropdown says which checkpoint the page shows.
function singdiffusionForgeCheckpoint() {
    return gradioApp().querySelector("#quicksettings .model_selection input");
}

function singdiffusionCheckpoint() {
    var forge = singdiffusionForgeCheckpoint();
    if (forge && forge.value) return forge.value;
    return (typeof opts !== "undefined" && opts.sd_model_checkpoint) || ""; /*global opts*/
}

// Of the preset handlers' _js (sing_webui/preset_ui.py): given their inputs' values, the last becomes the title of
// the checkpoint the page shows.
function singdiffusionWithCheckpoint(inputs) {
    inputs[inputs.length - 1] = singdiffusionCheckpoint();
    return inputs;
}

// The status line beside "save" says what the panel follows; once following is off, it says nothing.
function singdiffusionFollowStatus(follow, status) {
    return follow ? status : "";
}

function singdiffusionLoadPreset(tab) {
    var button = gradioApp().getElementById("script_" + tab + "_singdiffusion_load_preset");
    if (button) button.click();
}

function singdiffusionCheckpointShown() {
    // Not before the page has read its options (200 ms after the page first settles): Gradio 4 drops a click that
    // comes before it has wired the page's events, and Forge's dropdown has its value before that.
    if (typeof opts === "undefined" || !Object.keys(opts).length) return;
    var forge = singdiffusionForgeCheckpoint();
    if (forge && document.activeElement === forge) return; // a name being typed into Forge's dropdown, not a choice
    var checkpoint = singdiffusionCheckpoint();
    if (!checkpoint || checkpoint === singdiffusionShownCheckpoint) return;
    if (!gradioApp().getElementById("script_txt2img_singdiffusion_load_preset")) return; // the panels come later
    singdiffusionShownCheckpoint = checkpoint;
    singdiffusionTabs.forEach(singdiffusionLoadPreset);
}

onOptionsChanged(singdiffusionCheckpointShown);
onUiUpdate(singdiffusionCheckpointShown); // Forge's dropdown changes no option in the page: read it as the page changes

function singdiffusionWatchPanel(tab) {
    var panel = gradioApp().getElementById("script_" + tab + "_singdiffusion_enabled");
    var follow = gradioApp().querySelector("#script_" + tab + "_singdiffusion_follow_preset input");
    var modules = gradioApp().getElementById("script_" + tab + "_singdiffusion_modules");
    if (!panel || !follow) return;
    var notEdits = ["follow_preset", "modules", "checkpoint"].map(function(id) {
        return "#script_" + tab + "_singdiffusion_" + id;
    });

    var byHand = function(event) {
        if (!event.isTrusted || !follow.checked) return;
        if (notEdits.some(function(selector) {
            return event.target.closest(selector);
        })) return;
        follow.checked = false;
        updateInput(follow);
    };
    panel.addEventListener("input", byHand, true);
    panel.addEventListener("change", byHand, true);
    // Picking from the module list, and opening or closing the panel (which is "enabled"), are edits too.
    panel.addEventListener("mousedown", function(event) {
        if (event.target.closest("ul.options li")) byHand(event);
    }, true);
    panel.querySelector(".label-wrap").addEventListener("click", byHand, true);

    // Switching following on by hand shows the preset at once.
    follow.addEventListener("change", function(event) {
        if (event.isTrusted && follow.checked) singdiffusionLoadPreset(tab);
    });

    // The module table reads every module's header and hash: only when first opened.
    if (modules) {
        var listed = false;
        modules.querySelector(".label-wrap").addEventListener("click", function() {
            if (listed) return;
            listed = true;
            var refresh = gradioApp().getElementById("script_" + tab + "_singdiffusion_modules_refresh");
            if (refresh) refresh.click();
        });
    }
}

onUiLoaded(function() {
    singdiffusionTabs.forEach(singdiffusionWatchPanel);
});
