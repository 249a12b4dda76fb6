"""Write bench/startup_memory.py's results table into docs/performance.md and its Spanish twin.

Each guide holds the table between two marker comments; everything between them is replaced by a
line saying when and under what load the numbers were measured, and the table (in Spanish: the
figures' names translated and decimal commas). startup_memory.py calls this with `--docs`; run it
alone to copy the last results again:

  .venv/bin/python bench/docs_tables.py [--input bench/results/startup-memory.md]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "startup-memory.md"
GUIDES = {"en": REPO / "docs" / "performance.md", "es": REPO / "docs" / "es" / "performance.md"}
START, END = "<!-- results-table: start (bench/docs_tables.py) -->", "<!-- results-table: end -->"

SPANISH = {
    "figure": "cifra",
    "start with existing state -> first async query, wall": (
        "arranque con estado existente -> primera consulta asíncrona, reloj"
    ),
    "… CPU time (user+sys) of the stack": "… tiempo de CPU (usuario+sistema) de la pila",
    "… the start command returned (B: `up` reported READY)": "… volvió la orden de arranque (B: `up` anunció READY)",
    "… the client logged in (the web answers)": "… el cliente inició sesión (la web responde)",
    "… the first async query submitted": "… enviada la primera consulta asíncrona",
    "first-ever start -> first async query, wall": "primer arranque -> primera consulta asíncrona, reloj",
    "… the start command returned (A: after its db upgrade, init)": (
        "… volvió la orden de arranque (A: tras su db upgrade e init)"
    ),
    "… the client logged in": "… el cliente inició sesión",
    "idle PSS web + worker + beat + Redis, after start": "PSS en reposo web + worker + beat + Redis, tras arrancar",
    "… web (gunicorn master + 2 workers)": "… web (maestro de gunicorn + 2 workers)",
    "… worker (main + 4 prefork children)": "… worker (principal + 4 hijos prefork)",
    "… beat": "… beat",
    "… Redis": "… Redis",
    "runner's supervisor (B only, not in the sum)": "supervisor del ejecutor (solo B, fuera de la suma)",
    "idle PSS web + worker + beat + Redis, after the queries": (
        "PSS en reposo web + worker + beat + Redis, tras las consultas"
    ),
    "async `SELECT 1`, submit -> rows (50 ms polling)": "`SELECT 1` asíncrono, envío -> filas (sondeo cada 50 ms)",
    "sync `SELECT 1`": "`SELECT 1` síncrono",
    "async / sync": "asíncrona / síncrona",
    "… async, client: the submit request (202)": "… asíncrona, cliente: la petición de envío (202)",
    "… async, client: 202 -> task ended (hand-off and task)": (
        "… asíncrona, cliente: 202 -> tarea terminada (entrega y tarea)"
    ),
    "… async, client: task ended -> a poll saw it (quantisation + request)": (
        "… asíncrona, cliente: tarea terminada -> un sondeo la vio (cuantización + petición)"
    ),
    "… async, client: the request for the rows": "… asíncrona, cliente: la petición de las filas",
    "… async, client: status requests per query": "… asíncrona, cliente: peticiones de estado por consulta",
    "… async: submit -> task running (Superset's timestamps)": (
        "… asíncrona: envío -> tarea en marcha (marcas de Superset)"
    ),
    "… async: task running -> query ended": "… asíncrona: tarea en marcha -> consulta terminada",
    "… worker log: task received -> query set running": "… log del worker: tarea recibida -> consulta en marcha",
    "… worker log: set running -> statement starts (engine, connection)": (
        "… log del worker: en marcha -> empieza la sentencia (motor, conexión)"
    ),
    "… worker log: statement -> results ready (execute, fetch, serialise)": (
        "… log del worker: sentencia -> resultados listos (ejecutar, leer, serializar)"
    ),
    "… worker log: results written to Redis": "… log del worker: resultados escritos en Redis",
    "… worker log: stored -> task succeeded (status commit)": (
        "… log del worker: guardados -> tarea terminada (commit del estado)"
    ),
    "20 x `SELECT sleep(1)` at once, 4 slots (ideal 5 s)": "20 x `SELECT sleep(1)` a la vez, 4 huecos (ideal 5 s)",
    "… the first task's first line in a pool child, after the submits began": (
        "… primera línea de la primera tarea en un hijo del pool, tras empezar los envíos"
    ),
    "… one task in its child: first line -> succeeded": "… una tarea en su hijo: primera línea -> succeeded",
    "… of which the statement (`sleep(1)` on ClickHouse)": "… de ello, la sentencia (`sleep(1)` en ClickHouse)",
    "… a child's idle gap between two tasks (hand-off)": "… hueco ocioso de un hijo entre dos tareas (entrega)",
    "`SELECT 1` submitted 0.5 s into them, submit -> success": "`SELECT 1` enviado 0,5 s después, envío -> éxito",
    "… its submit request (until the 202)": "… su petición de envío (hasta el 202)",
    "… 202 -> a task set it running (its wait for a slot)": (
        "… 202 -> una tarea la pone en marcha (su espera de un hueco)"
    ),
    "… running -> ended (the task)": "… en marcha -> terminada (la tarea)",
    "… ended -> the follower's poll saw it": "… terminada -> la consulta periódica del seguidor la ve",
    "… the same `SELECT 1` on a lane's database (sql_lab.lanes, 1 slot of its own)": (
        "… el mismo `SELECT 1` en la base de datos de un carril (sql_lab.lanes, 1 hueco propio)"
    ),
    "… lane: its submit request (until the 202)": "… carril: su petición de envío (hasta el 202)",
    "… lane: 202 -> a task set it running": "… carril: 202 -> una tarea la pone en marcha",
    "… lane: running -> ended (the task)": "… carril: en marcha -> terminada (la tarea)",
    "… lane: ended -> the follower's poll saw it": "… carril: terminada -> la consulta periódica del seguidor la ve",
    "… the 20 meanwhile, with the lane": "… las 20 mientras tanto, con el carril",
    "… the lane's worker, idle PSS (main + 1 child; not in the sums)": (
        "… el worker del carril, PSS en reposo (principal + 1 hijo; fuera de las sumas)"
    ),
}


def _parts(results: str) -> tuple[str, str, str, str, list[str]]:
    """(when, rounds, load at the start, load at the end, the table's lines) of startup_memory.py's report."""
    measured = re.search(r"^Measured (.+?) by ", results, re.MULTILINE)
    rounds = re.search(r"^(\d+) round\(s\)", results, re.MULTILINE)
    load = re.search(r"1-minute load average\s+([\d.]+) at the start, ([\d.]+) at the end", results)
    table = [line for line in results[results.index("| figure |") :].splitlines() if line.startswith("|")]
    first, last = (load.group(1), load.group(2)) if load else ("?", "?")
    return measured.group(1) if measured else "?", rounds.group(1) if rounds else "?", first, last, table


def _spanish_row(line: str) -> str:
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    if set(cells[0]) <= {"-"}:
        return line
    label = SPANISH.get(cells[0], cells[0])  # a figure added later shows in English until named here
    return "| " + " | ".join([label, *(re.sub(r"(\d)\.(\d)", r"\1,\2", cell) for cell in cells[1:])]) + " |"


def block(results: str, language: str) -> str:
    when, rounds, first, last, table = _parts(results)
    if language == "es":
        intro = (
            f"Copiada por `bench/docs_tables.py` de la última salida: medida el {when}, {rounds} ronda(s), "
            f"carga media de 1 minuto {first} al empezar y {last} al terminar."
        )
        rows = [_spanish_row(line) for line in table]
        intro = re.sub(r"(\d)\.(\d)", r"\1,\2", intro)
    else:
        intro = (
            f"Copied by `bench/docs_tables.py` from the last output: measured {when}, {rounds} round(s), "
            f"1-minute load average {first} at the start and {last} at the end."
        )
        rows = table
    return "\n".join([START, "", intro, "", *rows, "", END])


def update(results: str) -> list[Path]:
    """Replace the block between the markers in each guide; a guide without them is an error."""
    written = []
    for language, path in GUIDES.items():
        text = path.read_text()
        if START not in text or END not in text:
            raise SystemExit(f"{path}: the markers {START!r} and {END!r} are missing; put them where the table goes")
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        path.write_text(before + block(results, language) + after)
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=RESULTS, help="startup_memory.py's Markdown report")
    args = parser.parse_args()
    for path in update(args.input.read_text()):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
