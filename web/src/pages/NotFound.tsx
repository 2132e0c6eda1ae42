import { Link } from "react-router-dom";

export function NotFoundPage() {
  return (
    <section className="card empty">
      <h1>Page not found</h1>
      <p>
        Back to <Link to="/flows">flows</Link>.
      </p>
    </section>
  );
}
