/* Shopflow web push service worker. Register it from your store's origin:
 *   navigator.serviceWorker.register("/push/sw.js")  (proxy /push/sw.js to Shopflow, or copy this file)
 * The payload is the JSON Shopflow sends: {title, body, url, icon, tag, message_id}.
 */
self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = { title: event.data ? event.data.text() : "" };
  }
  var options = {
    body: data.body || "",
    icon: data.icon,
    tag: data.tag,
    data: { url: data.url || "/", message_id: data.message_id },
  };
  event.waitUntil(self.registration.showNotification(data.title || "", options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
      for (var i = 0; i < list.length; i++) {
        if (list[i].url === url && "focus" in list[i]) return list[i].focus();
      }
      return self.clients.openWindow ? self.clients.openWindow(url) : undefined;
    })
  );
});
