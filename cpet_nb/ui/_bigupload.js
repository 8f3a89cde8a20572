// The browser side of cpet_nb.ui._bigupload.BigUpload (an anywidget module).
//
// A file input whose selection goes to the cpet_nb server extension's POST uploads with
// XMLHttpRequest (fetch cannot report upload progress), authenticated as JupyterLab's own
// requests are: the login cookie, and the _xsrf cookie's value in an X-XSRFToken header.
// The extension puts the endpoint's URL and limits in the page config (the
// jupyter-config-data element) under the key the model's `config_key` names; without that
// entry (Voila, a server without the extension) the button is disabled and says why. On
// success the server's record of the staged upload is set as `staged`, which the kernel
// observes.

function pageEntry(key) {
  const element = document.getElementById("jupyter-config-data");
  if (!element) return null;
  try {
    return JSON.parse(element.textContent)[key] || null;
  } catch (_) {
    return null;
  }
}

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

// Why the server would refuse `files`, or "" (the limits as the page config gives them).
function overLimit(files, api) {
  if (files.length > api.max_files) {
    return `${files.length} files: the server takes at most ${api.max_files} in one upload`;
  }
  const big = files.find((f) => f.size > api.max_file_bytes);
  if (big) {
    return `${big.name} (${megabytes(big.size)}) is over the server's limit of ` +
      `${megabytes(api.max_file_bytes)} per file`;
  }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > api.max_body_bytes) {
    return `the selection (${megabytes(total)}) is over the server's limit of ` +
      `${megabytes(api.max_body_bytes)} per upload: upload it in parts`;
  }
  return "";
}

// "file k of n: name", from the bytes sent so far (multipart overhead is small).
function currentFile(files, sent) {
  let sum = 0;
  for (let i = 0; i < files.length; i++) {
    sum += files[i].size;
    if (sent < sum) return `file ${i + 1} of ${files.length}: ${files[i].name}`;
  }
  return `${files.length} of ${files.length} files`;
}

function render({ model, el }) {
  const api = pageEntry(model.get("config_key"));
  const root = document.createElement("div");
  root.className = "cpet-big-upload";
  root.style.cssText = "display:flex;align-items:center;gap:0.5em;flex-wrap:wrap";
  const input = document.createElement("input");
  input.type = "file";
  input.multiple = true;
  input.style.display = "none";
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button";
  button.style.width = "auto"; // ipywidgets' buttons are narrower than the label
  button.textContent = model.get("description");
  const bar = document.createElement("progress");
  bar.className = "cpet-big-upload-progress";
  bar.style.cssText = "width:12em;display:none";
  const status = document.createElement("span");
  status.className = "cpet-big-upload-status";
  root.append(button, input, bar, status);
  el.appendChild(root);

  const say = (text, error = false) => {
    status.textContent = text;
    status.style.color = error ? "#b00020" : "";
  };
  if (!api) {
    button.disabled = true;
    button.title = "needs the cpet_nb server extension in this Jupyter server";
    say("(large uploads need the cpet_nb server extension, not on this page: use the " +
        "path field)");
    return;
  }
  button.title = "Streams the files to the Jupyter server (any size up to its limits), " +
    "with progress; they are then read as a folder on the server";
  button.onclick = () => input.click();
  input.onchange = () => {
    const files = Array.from(input.files);
    input.value = "";
    if (files.length === 0) return;
    const refusal = overLimit(files, api);
    if (refusal) {
      say(refusal, true);
      return;
    }
    send(files);
  };

  function send(files) {
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", api.uploads);
    xhr.setRequestHeader("X-XSRFToken", xsrfToken()); // the browser sets the multipart type
    button.disabled = true;
    bar.style.display = "";
    bar.max = Math.max(total, 1);
    bar.value = 0;
    say(`sending ${files.length} files (${megabytes(total)})…`);
    xhr.upload.onprogress = (event) => {
      const sent = Math.min(event.loaded, total);
      bar.value = sent;
      say(`${megabytes(sent)} of ${megabytes(total)} sent · ${currentFile(files, sent)}`);
    };
    xhr.onload = () => {
      button.disabled = false;
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        body = { message: `the server answered ${xhr.status} ${xhr.statusText}` };
      }
      if (xhr.status === 201) {
        bar.value = bar.max;
        say(`✓ ${body.files.length} files (${megabytes(body.total_bytes)}) on the ` +
            "server: read below");
        model.set("staged", body);
        model.save_changes();
      } else {
        bar.style.display = "none";
        say(`upload refused: ${body.message || xhr.status}`, true);
      }
    };
    xhr.onerror = () => {
      button.disabled = false;
      bar.style.display = "none";
      say("the upload was interrupted (connection lost)", true);
    };
    xhr.send(form);
  }
}

export default { render };
