"""The studio's HTTP adapter: a FastAPI app over one ``Pipeline``, plus the static page (static/index.html).

Sampling requests (generate / infill / continue / bridge) answer 202 with a job; clients poll
``GET /api/jobs/{id}?wait=seconds`` until it is done. Every error is JSON ``{"detail": "<one readable line>"}``."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import socket
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from melodiff import __version__
from melodiff.errors import MelodiffError
from melodiff.loading import model_meters
from melodiff.music.controls import Controls
from melodiff.music.form import written_length
from melodiff.music.melody import BARS_PER_CHUNK
from melodiff.music.meter import meter as check_meter
from melodiff.music.midi_io import fluidsynth_available
from melodiff.options import MAX_SAMPLING_STEPS, Sampler
from melodiff.pipeline import Pipeline, model_folder
from melodiff.server import media
from melodiff.server.jobs import Job, JobQueue, QueueFull
from melodiff.server.schemas import (
    MAX_BARS,
    MAX_TOTAL_BARS,
    MELODY_ID,
    AbcRequest,
    BridgeRequest,
    ContinueRequest,
    ControlledRequest,
    GenerateRequest,
    HealthOut,
    InfillRequest,
    JobOut,
    JobStatus,
    Limits,
    MelodyOut,
    MeterName,
    ModelOut,
    UploadOut,
)
from melodiff.utils.threads import configure_threads

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_WAIT_SECONDS = 30.0
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and headers around an upload
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MUSICXML = "application/vnd.recordare.musicxml+xml"

Tempo = Annotated[float, Query(gt=20, le=300, description="quarter notes per minute")]
Program = Annotated[int, Query(ge=0, le=127, description="General MIDI program (0 = piano)")]
MELODY_ID_PATH = PathParam(pattern=MELODY_ID, description="an id returned by this server")


class Studio:
    """What the routes share: the pipeline (loaded once, on first use when given a loader), the pipelines of the
    model's other meters (each loaded on first use by ``meter_loader``), melodies and jobs."""

    def __init__(self, pipeline_or_loader: Pipeline | Callable[[], Pipeline], max_concurrent: int,
                 max_queued: int, max_upload_bytes: int, meters: dict[str, Callable[[], Pipeline]] | None = None
                 ) -> None:
        self._pipeline = pipeline_or_loader if isinstance(pipeline_or_loader, Pipeline) else None
        self._loader = None if self._pipeline is not None else pipeline_or_loader
        self._meter_loaders = meters or {}  # meter -> loader of the pipeline that makes it
        self._by_meter: dict[str, Pipeline] = {}
        self._load_lock = threading.Lock()
        self.melodies = media.MelodyStore()
        self.jobs = JobQueue(max_concurrent, max_queued)
        self.max_upload_bytes = max_upload_bytes
        self.file_work = threading.BoundedSemaphore(max_concurrent)  # upload parsing and WAV rendering

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    def pipeline(self, meter: str | None = None) -> Pipeline:
        """The pipeline that makes ``meter`` (default: the model's first meter); 422 naming the meters for one the
        model does not make."""
        with self._load_lock:
            if self._pipeline is None:
                self._pipeline = self._loader()
            if meter is None or meter == self._pipeline.meter.name:
                return self._pipeline
            if meter not in self._by_meter:
                check_meter(meter, tuple(self.meters()))  # MeterOutsideModel: 422 naming the meters
                self._by_meter[meter] = self._meter_loaders[meter]()
            return self._by_meter[meter]

    def meters(self) -> list[str]:
        """The meters the studio's model makes (the default one first)."""
        first = [self._pipeline.meter.name] if self._pipeline is not None else []
        return list(dict.fromkeys([*first, *self._meter_loaders]))

    def close(self) -> None:
        self.jobs.shutdown()

    def max_steps(self) -> int:
        return min(MAX_SAMPLING_STEPS, self._pipeline.schedule.num_steps) if self._pipeline is not None \
            else MAX_SAMPLING_STEPS

    def melody(self, melody_id: str) -> media.StoredMelody:
        try:
            return self.melodies.get(melody_id)
        except KeyError as exc:
            raise HTTPException(404, exc.args[0]) from None

    def job_out(self, job: Job) -> JobOut:
        melodies = [m.out() for m in job.result] if job.status is JobStatus.DONE else None
        return JobOut(id=job.id, kind=job.kind, status=job.status, progress=job.progress,
                      queue_position=self.jobs.position(job), melodies=melodies, error=job.error)


class _BodyTooLarge(HTTPException):
    pass


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413) before they are read into memory or spooled
    to disk, by Content-Length when sent, else by counting the chunks as they arrive."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await JSONResponse({"detail": self._message()}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge(413, self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"the request is too large (uploads are limited to {_size(self.max_bytes - MULTIPART_OVERHEAD)})"


class SameOrigin:
    """ASGI middleware: refuse (403) a state-changing request (POST, PUT, PATCH, DELETE) that a browser sends from
    another site. Browsers send ``Origin`` with every cross-site POST, plain HTML forms included, and a page cannot
    forge it; the studio's own page sends its own origin. Requests without ``Origin`` (curl, scripts) pass."""

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            headers = dict(scope["headers"])
            origin = headers.get(b"origin")
            if origin is not None and not _same_origin(origin, headers.get(b"host", b""), scope.get("scheme", "")):
                detail = "cross-site requests are refused: use the studio's own page or a script without Origin"
                await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _same_origin(origin: bytes, host: bytes, scheme: str) -> bool:
    """``Origin: scheme://host[:port]`` names the server the request was sent to ("null" never does)."""
    return origin.decode("latin-1").lower() == f"{scheme}://{host.decode('latin-1')}".lower()


def create_app(pipeline_or_loader: Pipeline | Callable[[], Pipeline], max_upload_bytes: int = 2_000_000,
               max_concurrent: int = 1, max_queued: int = 64, allowed_hosts: list[str] | None = None,
               meters: dict[str, Callable[[], Pipeline]] | None = None) -> FastAPI:
    """The studio app. ``pipeline_or_loader``: a Pipeline, or a function returning one (called once, on first use);
    ``meters``: for the model's other meters, a function returning the pipeline that makes each (loading.find_model).
    At most ``max_concurrent`` sampling jobs (and as many upload parses / WAV renders) run at once; up to
    ``max_queued`` more wait, and past that requests get 503. Uploads over ``max_upload_bytes`` get 413.
    ``allowed_hosts``: Host headers to answer (others get 400), against DNS rebinding; None answers any."""
    studio = Studio(pipeline_or_loader, max_concurrent, max_queued, max_upload_bytes, meters)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        studio.close()

    app = FastAPI(title="melodiff studio", version=__version__, lifespan=lifespan,
                  description="Compose, infill, continue and bridge melodies with melodiff (docs/STUDIO.md).")
    app.state.studio = studio
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(SameOrigin)  # added after the body limit, so it runs before it: a cross-site body is never read
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(MelodiffError, _melodiff_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/health", response_model=HealthOut, tags=["studio"])
    async def health() -> HealthOut:
        """Whether the server is up, its model's window, the queue and the limits requests are checked against."""
        window = studio.pipeline().window_chunks * BARS_PER_CHUNK if studio.loaded else None
        limits = Limits(max_steps=studio.max_steps(), max_upload_bytes=max_upload_bytes,
                        max_concurrent=max_concurrent, max_queued=max_queued)
        return HealthOut(status="ok", model_loaded=studio.loaded, window_bars=window,
                         samplers=[s.value for s in Sampler], running=studio.jobs.count(JobStatus.RUNNING),
                         queued=studio.jobs.count(JobStatus.QUEUED), fluidsynth=fluidsynth_available(), limits=limits)

    @app.get("/api/model", response_model=ModelOut, tags=["studio"])
    async def model(meter: Annotated[MeterName | None, Query(description="the meter whose model to describe "
                                                                    "(default: the first)")] = None) -> ModelOut:
        """The window, the controls it takes and the styles it knows of the model that makes ``meter`` (loaded on
        first use), and every meter the studio's model folder makes."""
        pipeline = await run_in_threadpool(studio.pipeline, meter)
        controls = list(pipeline.controls)
        styles = list(pipeline.styles) if "style" in controls else []
        return ModelOut(window_bars=pipeline.window_chunks * BARS_PER_CHUNK, controls=controls, styles=styles,
                        guided=pipeline.guide is not None, meters=studio.meters())

    # ---- sampling jobs -----------------------------------------------------------------------------------------
    async def submit(kind: str, request: ControlledRequest, work: Callable[[Pipeline, Job, Controls], list],
                     meter: str | None = None) -> JSONResponse:
        """Queue ``work`` on the pipeline that makes ``meter`` (the request's, or its melody's)."""
        request.options()  # a bad combination (resampling with dpm-solver) is a 422 now, not a failed job later
        pipeline = await run_in_threadpool(studio.pipeline, meter)
        if request.sampler is not Sampler.DDPM and request.steps is not None and request.steps > studio.max_steps():
            raise HTTPException(422, f"steps: at most {studio.max_steps()} for this model, got {request.steps}")
        controls = request.controls()  # an unreadable key or range: 422
        pipeline.draw_tunes(1, 0, controls)  # a control this model does not take, or a style it does not know: 422
        try:
            job = studio.jobs.submit(kind, lambda job: work(pipeline, job, controls))
        except QueueFull as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
        return JSONResponse(studio.job_out(job).model_dump(mode="json"), status_code=202)

    @app.post("/api/generate", status_code=202, response_model=JobOut, tags=["sampling"])
    async def generate(request: GenerateRequest) -> JSONResponse:
        """Melodies of ``bars`` bars of ``meter``, in ``form``, with the key, range, density and style asked for."""
        pipeline = await run_in_threadpool(studio.pipeline, request.meter)
        bars = request.bars or written_length(request.form, request.section_bars)
        if bars is not None and bars > MAX_BARS:
            raise HTTPException(422, f"form: {request.form} lasts {bars} bars; the limit is {MAX_BARS}")
        bars = bars or pipeline.window_chunks * BARS_PER_CHUNK
        pipeline.form_sources(request.form, bars, request.section_bars, 1)  # a form that does not fit: 422 now

        def work(pipeline: Pipeline, job: Job, controls: Controls) -> list[media.StoredMelody]:
            melodies = pipeline.generate(bars, request.num_samples, request.seed, request.options(), job.report,
                                         request.form, request.section_bars, controls=controls)
            return [studio.melodies.add(m, f"generated, seed {request.seed}, #{i + 1}{_asked(request)}")
                    for i, m in enumerate(melodies)]

        return await submit("generate", request, work, request.meter)

    @app.post("/api/infill", status_code=202, response_model=JobOut, tags=["sampling"])
    async def infill(request: InfillRequest) -> JSONResponse:
        """Regenerate bars ``[start_bar, end_bar)`` (rounded outward to whole 2-bar chunks); the rest is kept."""
        source = studio.melody(request.melody_id)
        if request.end_bar > source.melody.padded_bars:
            raise HTTPException(422, f"end_bar: the melody has {source.melody.padded_bars} bars (whole 2-bar chunks), "
                                f"got {request.end_bar}")
        first, last = request.start_bar // BARS_PER_CHUNK, math.ceil(request.end_bar / BARS_PER_CHUNK)
        chunk = source.melody.chunk_steps
        span = (first * chunk, last * chunk)

        def work(pipeline: Pipeline, job: Job, controls: Controls) -> list[media.StoredMelody]:
            melodies = pipeline.infill(source.melody, request.start_bar, request.end_bar, request.num_samples,
                                       request.seed, request.options(), job.report, controls=controls)
            label = f"bars {first * BARS_PER_CHUNK + 1}-{last * BARS_PER_CHUNK} infilled"
            return [studio.melodies.add(m, f"{label}, #{i + 1}{_asked(request)}", span, [source.id])
                    for i, m in enumerate(melodies)]

        return await submit("infill", request, work, source.melody.meter.name)

    @app.post("/api/continue", status_code=202, response_model=JobOut, tags=["sampling"])
    async def continue_(request: ContinueRequest) -> JSONResponse:
        """The melody followed by ``bars`` new bars (the melody is first padded to whole 2-bar chunks)."""
        source = studio.melody(request.melody_id)
        have = len(source.melody.padded())
        total = have + math.ceil(request.bars / BARS_PER_CHUNK) * source.melody.chunk_steps
        _check_total(total, source.melody.steps_per_bar)

        def work(pipeline: Pipeline, job: Job, controls: Controls) -> list[media.StoredMelody]:
            melodies = pipeline.continue_melody(source.melody, request.bars, request.num_samples, request.seed,
                                                request.options(), job.report, controls=controls)
            label = f"continued by {request.bars} bars"
            return [studio.melodies.add(m, f"{label}, #{i + 1}{_asked(request)}", (have, total), [source.id])
                    for i, m in enumerate(melodies)]

        return await submit("continue", request, work, source.melody.meter.name)

    @app.post("/api/bridge", status_code=202, response_model=JobOut, tags=["sampling"])
    async def bridge(request: BridgeRequest) -> JSONResponse:
        """``first``, then ``bars`` new bars leading into ``second``, then ``second``."""
        first, second = studio.melody(request.first_id), studio.melody(request.second_id)
        start = len(first.melody.padded())
        if first.melody.meter != second.melody.meter:
            raise HTTPException(422, f"the melodies are in {first.melody.meter} and {second.melody.meter}: bridge "
                                "two melodies in one meter")
        end = start + math.ceil(request.bars / BARS_PER_CHUNK) * first.melody.chunk_steps
        _check_total(end + len(second.melody.padded()), first.melody.steps_per_bar)

        def work(pipeline: Pipeline, job: Job, controls: Controls) -> list[media.StoredMelody]:
            melodies = pipeline.bridge(first.melody, second.melody, request.bars, request.num_samples,
                                       request.seed, request.options(), job.report, controls=controls)
            return [studio.melodies.add(m, f"bridged over {request.bars} bars, #{i + 1}{_asked(request)}", (start, end),
                                        [first.id, second.id]) for i, m in enumerate(melodies)]

        return await submit("bridge", request, work, first.melody.meter.name)

    @app.get("/api/jobs/{job_id}", response_model=JobOut, tags=["sampling"])
    async def job_status(job_id: Annotated[str, MELODY_ID_PATH],
                         wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS,
                                                      description="wait up to this many seconds for the job to "
                                                      "finish before answering")] = 0.0) -> JobOut:
        """A job's status, progress and, once done, its melodies."""
        job = studio.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id} (finished jobs are kept for a while only)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not job.done.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return studio.job_out(job)

    # ---- melodies and their files ----------------------------------------------------------------------------------
    @app.post("/api/melodies", response_model=UploadOut, tags=["melodies"])
    async def upload(file: Annotated[UploadFile, File(description="a MIDI, MusicXML, ABC or kern file")]) -> UploadOut:
        """Upload a music file; its melodies are stored and returned (MIDI: the first non-drum track)."""
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"{media.display_name(file.filename)} is larger than {_size(max_upload_bytes)}")
        name = file.filename or "upload"
        found, message = await run_in_threadpool(_with(studio.file_work, media.read_upload), name, data,
                                                 MAX_TOTAL_BARS)
        return UploadOut(melodies=[studio.melodies.add(m, label).out() for m, label in found], message=message)

    @app.get("/api/melodies/{melody_id}", response_model=MelodyOut, tags=["melodies"])
    async def melody(melody_id: Annotated[str, MELODY_ID_PATH]) -> MelodyOut:
        """A stored melody's notes (steps are 16th notes), for drawing piano rolls."""
        return studio.melody(melody_id).out()

    @app.get("/api/melodies/{melody_id}/midi", tags=["melodies"], response_class=Response,
             responses={200: {"content": {"audio/midi": {}}}})
    async def midi(melody_id: Annotated[str, MELODY_ID_PATH], tempo: Tempo = 120.0, program: Program = 0) -> Response:
        """The melody as a MIDI file (a download)."""
        item = studio.melody(melody_id)
        return Response(media.midi_bytes(item.melody, tempo, program), media_type="audio/midi",
                        headers={"Content-Disposition": f'attachment; filename="melodiff-{melody_id[:8]}.mid"'})

    @app.get("/api/melodies/{melody_id}/wav", tags=["melodies"], response_class=Response,
             responses={200: {"content": {"audio/wav": {}}}})
    async def wav(melody_id: Annotated[str, MELODY_ID_PATH], tempo: Tempo = 120.0, program: Program = 0) -> Response:
        """The melody rendered to WAV (FluidSynth when installed, else a plain built-in synthesiser)."""
        item = studio.melody(melody_id)
        data = await run_in_threadpool(_with(studio.file_work, media.wav_bytes), item.melody, tempo, program)
        return Response(data, media_type="audio/wav",
                        headers={"Content-Disposition": f'inline; filename="melodiff-{melody_id[:8]}.wav"'})

    async def sheet(melody_id: str, tempo: float) -> tuple[str, str, str]:
        item = studio.melody(melody_id)
        return await run_in_threadpool(_with(studio.file_work, media.sheet), item.melody, item.label, tempo)

    @app.get("/api/melodies/{melody_id}/musicxml", tags=["notation"], response_class=Response,
             responses={200: {"content": {MUSICXML: {}}}})
    async def musicxml(melody_id: Annotated[str, MELODY_ID_PATH], tempo: Tempo = 120.0) -> Response:
        """The melody as MusicXML 4 (a download): key signature from its key, notes spelled in it (docs/NOTATION.md)."""
        text = (await sheet(melody_id, tempo))[0]
        return Response(text, media_type=MUSICXML, headers=_attachment(melody_id, "musicxml"))

    @app.get("/api/melodies/{melody_id}/abc", tags=["notation"], response_class=Response,
             responses={200: {"content": {"text/vnd.abc": {}}}})
    async def abc(melody_id: Annotated[str, MELODY_ID_PATH], tempo: Tempo = 120.0) -> Response:
        """The melody as an ABC 2.1 tune (text; a download)."""
        text = (await sheet(melody_id, tempo))[1]
        return Response(text, media_type="text/vnd.abc; charset=utf-8", headers=_attachment(melody_id, "abc"))

    @app.get("/api/melodies/{melody_id}/svg", tags=["notation"], response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}}}})
    async def svg(melody_id: Annotated[str, MELODY_ID_PATH], tempo: Tempo = 120.0) -> Response:
        """The melody engraved as sheet music (Verovio SVG, one page; bar *i* is the *i*-th ``g.measure``)."""
        text = (await sheet(melody_id, tempo))[2]
        headers = {"Content-Disposition": f'inline; filename="melodiff-{melody_id[:8]}.svg"',
                   "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
        return Response(text, media_type="image/svg+xml", headers=headers)

    @app.post("/api/melodies/abc", response_model=UploadOut, tags=["notation"])
    async def paste_abc(request: AbcRequest) -> UploadOut:
        """ABC text pasted in (a tune or a book of tunes): its melodies (4/4, 3/4, 6/8 and the meters read as them)
        are read as an uploaded .abc file's are, stored and returned. Text that is not ABC or holds no melody in
        those meters: 422 with one line."""
        found, message = await run_in_threadpool(_with(studio.file_work, media.read_abc_text), request.text,
                                                 MAX_TOTAL_BARS)
        return UploadOut(melodies=[studio.melodies.add(m, label).out() for m, label in found], message=message)

    return app


def serve(model: str = "default", host: str = "127.0.0.1", port: int = 8000, max_concurrent: int = 1,
          device: str = "auto") -> None:
    """Load the model onto ``device`` (errors surface here, before the server starts) and serve the studio until
    interrupted."""
    import uvicorn

    configure_threads()  # the thread count for the cores free now (utils/threads.py; the CLI's main() did it too)
    if not 0 < port < 65536:
        raise MelodiffError(f"port must be in 1..65535, got {port}")
    pipeline = Pipeline.from_pretrained(model).to(device)
    folder = model_folder(model)
    # one pipeline per meter (a Pipeline's meter is state): 3/4 and 6/8 each load the triple model, ~20 MB apiece
    others = {m: functools.partial(_load, model, m, device) for m in model_meters(folder) if m != pipeline.meter.name}
    if host not in LOCAL_HOSTS:
        log.warning("serving on %s: the studio has no authentication; anyone who can reach this address can use it",
                    host)
    # bound to this machine: answer only requests addressed to it (a web page elsewhere cannot rebind a name to it)
    hosts = ["127.0.0.1", "localhost"] if host in ("127.0.0.1", "localhost") else None
    app = create_app(pipeline, max_concurrent=max_concurrent, allowed_hosts=hosts, meters=others)
    try:  # bound here, so that a port in use is an OSError (exit 1), not uvicorn's own exit 3
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host} port {port} ({exc.strerror})") from None
    print(f"melodiff studio on http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl-C stops it)")
    with sock:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


# ---- helpers ---------------------------------------------------------------------------------------------------------
def _load(model: str, meter: str, device: str) -> Pipeline:
    return Pipeline.from_pretrained(model, meter).to(device)


def _check_total(steps: int, steps_per_bar: int) -> None:
    """422 for a result of more than MAX_TOTAL_BARS bars (``steps`` in bars of ``steps_per_bar``)."""
    if steps > MAX_TOTAL_BARS * steps_per_bar:
        raise HTTPException(422, f"the result would have {-(-steps // steps_per_bar)} bars; the limit is "
                            f"{MAX_TOTAL_BARS}")


def _asked(request: ControlledRequest) -> str:
    """The controls a request asked for, as written, for a melody's label: " (key Em, range D4-B5)" or ""."""
    asked = [(name, getattr(request, name, None)) for name in ("key", "range", "density", "style")]
    words = [f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}" for name, value in asked
             if value is not None]
    return f" ({', '.join(words)})" if words else ""


def _attachment(melody_id: str, suffix: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="melodiff-{melody_id[:8]}.{suffix}"'}


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes >= 100_000 else f"{num_bytes:,} bytes"


def _with(semaphore: threading.BoundedSemaphore, func: Callable) -> Callable:
    def limited(*args):
        with semaphore:
            return func(*args)

    return limited


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line ("bars: Input should be less than or equal to 64") instead of pydantic's list."""
    lines = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        where = ".".join(str(part) for part in (loc[1:] if loc[:1] in (["body"], ["query"], ["path"]) else loc))
        lines.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return JSONResponse({"detail": "; ".join(lines) or "invalid request"}, status_code=422)


async def _melodiff_error(request: Request, exc: MelodiffError) -> JSONResponse:
    """422 with the library's message; 415 for an upload that is not a music file."""
    return JSONResponse({"detail": str(exc)}, status_code=415 if isinstance(exc, media.NotMusic) else 422)
