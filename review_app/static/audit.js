// Show each decision's time in the auditor's own time zone, to the minute.
"use strict";
document.querySelectorAll("time[datetime]").forEach((element) => {
  const when = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) {
    element.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    element.title = element.getAttribute("datetime");
  }
});
