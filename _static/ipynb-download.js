// Adds ".ipynb" (the executed notebook, which `make book` copies next to each chapter's page) to the download
// menu of every page that has code cells, beside the theme's ".md" source and ".pdf" print items.
document.addEventListener("DOMContentLoaded", () => {
  if (!document.querySelector("div.cell")) return;
  const source = document.querySelector(".dropdown-download-buttons a.btn-download-source-button");
  if (!source) return;
  const item = source.closest("li").cloneNode(true);
  const link = item.querySelector("a");
  link.href = window.location.pathname.split("/").pop().replace(/\.html$/, ".ipynb");
  link.setAttribute("download", "");
  link.title = "Download the executed notebook";
  link.classList.add("btn-download-notebook-button");
  link.querySelector(".btn__text-container").textContent = ".ipynb";
  source.closest("li").after(item);
});
