// Embedded MongoDB-wire stand-in for development and tests (SPEC §5).
//
// Compiled with its sibling sources by src/dev/mongo-java-server.ts (into build/), or by hand:
//   javac -cp "$(cat classpath.txt)" -d build *.java
//   java -cp "$(cat classpath.txt):build" Launcher [port]
//
// Serves mongo-java-server's in-memory backend, reporting MongoDB 5.0 (wire version 13)
// with the oplog enabled so collection change streams work, on 127.0.0.1:<port>
// (0 = a free port). Prints exactly one line `MONGODB_URI=mongodb://127.0.0.1:<port>/`
// to stdout, then runs until its standard input reaches end-of-file (the parent died
// or closed it) or it receives SIGTERM/SIGINT.
//
// The netty pipeline is the same as MongoServer.bind() builds, plus one handler,
// AwaitDataHandler: mongo-java-server answers a change stream's getMore at once even
// when there is nothing new, so the driver re-polls in a tight loop (thousands of
// getMores a second, about a CPU core each on client and server). The handler parks
// such a getMore, without blocking any thread, until a write command completes or
// the await time (getMore's maxTimeMS, else 1 s, as mongod) runs out. It also answers
// `hello` (which mongo-java-server lacks) as isMaster.
// MONGO_LAUNCHER_PLAIN=1 uses the unmodified MongoServer instead.

// Imports are by package (the file once ran as a single-file source program).
import de.bwaldvogel.mongo.*;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.*;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.*;
import io.netty.channel.group.*;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.*;
import java.net.InetSocketAddress;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

@SuppressWarnings("deprecation") // NioEventLoopGroup, as MongoServer itself uses
public class Launcher {
    /**
     * mongo-java-server 1.47.0's ServerVersion.MONGO_5_0 reports maxWireVersion 8
     * (MongoDB 4.2), but Node driver 7 refuses servers below wire version 9 (4.4).
     * The backend uses the version only for isMaster/buildInfo/serverStatus replies,
     * so report MongoDB 5.0's real wire version, 13.
     */
    record ReportedVersion(List<Integer> getVersionArray, int getWireVersion) implements MongoVersion {
        static final ReportedVersion MONGO_5_0 = new ReportedVersion(List.of(5, 0, 0), 13);
    }

    /** A running server: the bound address and how to stop it. */
    interface Running {
        InetSocketAddress address();

        void shutdownNow();
    }

    public static void main(String[] args) throws Exception {
        int port = 0;
        if (args.length > 0 && !args[0].isBlank()) {
            try {
                port = Integer.parseInt(args[0].trim());
            } catch (NumberFormatException e) {
                System.err.println("Launcher: port must be an integer, got '" + args[0] + "'");
                System.exit(2);
            }
        }

        // PlannedMemoryBackend.java: filters with more fields than an index's keys use the
        // index, as in MongoDB. MONGO_LAUNCHER_STOCK_PLANNER=1 keeps the stock planner.
        boolean stockPlanner = "1".equals(System.getenv("MONGO_LAUNCHER_STOCK_PLANNER"));
        MemoryBackend backend = stockPlanner ? new MemoryBackend() : new PlannedMemoryBackend();
        backend.version(ReportedVersion.MONGO_5_0);
        // Change streams read the oplog; enable it before any client connects.
        backend.enableOplog();

        boolean plain = "1".equals(System.getenv("MONGO_LAUNCHER_PLAIN"));
        Running running;
        try {
            running = plain ? startPlain(backend, port) : startWithAwaitData(backend, port);
        } catch (RuntimeException e) {
            System.err.println("Launcher: cannot bind 127.0.0.1:" + port + ": " + e);
            System.exit(3);
            return;
        }
        int boundPort = running.address().getPort();

        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                running.shutdownNow();
            } catch (RuntimeException ignored) {
                // shutting down anyway
            }
            done.countDown();
        }, "mongo-launcher-shutdown"));

        System.out.println("MONGODB_URI=mongodb://127.0.0.1:" + boundPort + "/");
        System.out.flush();
        System.err.println("Launcher: mongo-java-server reporting MongoDB "
            + ReportedVersion.MONGO_5_0.toVersionString() + " (wire version "
            + ReportedVersion.MONGO_5_0.getWireVersion() + ")" + (plain ? " [plain]" : "")
            + " listening on 127.0.0.1:" + boundPort);

        // Exit when stdin closes, so the server dies with its parent process.
        Thread stdinWatcher = new Thread(() -> {
            InputStream in = System.in;
            byte[] buf = new byte[256];
            try {
                while (in.read(buf) >= 0) {
                    // ignore input; only EOF matters
                }
            } catch (IOException ignored) {
                // treat as EOF
            }
            System.exit(0); // runs the shutdown hook
        }, "mongo-launcher-stdin");
        stdinWatcher.setDaemon(true);
        stdinWatcher.start();

        done.await();
    }

    /** The stock MongoServer (busy-polling change streams). */
    static Running startPlain(MemoryBackend backend, int port) {
        MongoServer server = new MongoServer(backend);
        server.bind("127.0.0.1", port);
        return new Running() {
            @Override
            public InetSocketAddress address() {
                return server.getLocalAddress();
            }

            @Override
            public void shutdownNow() {
                server.shutdownNow();
            }
        };
    }

    /** Same bootstrap and pipeline as MongoServer.bind(), plus AwaitDataHandler. */
    static Running startWithAwaitData(MemoryBackend backend, int port) {
        EventLoopGroup bossGroup = new NioEventLoopGroup(1, new MongoThreadFactory("mongo-server-boss"));
        EventLoopGroup workerGroup = new NioEventLoopGroup(0, new MongoThreadFactory("mongo-server-worker"));
        ChannelGroup channelGroup = new DefaultChannelGroup("mongodb-channels", workerGroup.next());
        AwaitData awaitData = new AwaitData();
        Channel serverChannel;
        try {
            serverChannel = new ServerBootstrap()
                .group(bossGroup, workerGroup)
                .channel(NioServerSocketChannel.class)
                .option(ChannelOption.SO_BACKLOG, 100)
                .localAddress(new InetSocketAddress("127.0.0.1", port))
                .childOption(ChannelOption.TCP_NODELAY, Boolean.TRUE)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new MongoWireReplyEncoder());
                        ch.pipeline().addLast(new MongoWireMessageEncoder());
                        ch.pipeline().addLast(new MongoWireProtocolHandler());
                        ch.pipeline().addLast(new AwaitDataHandler(awaitData));
                        ch.pipeline().addLast(new MongoDatabaseHandler(backend, channelGroup));
                        ch.pipeline().addLast(new MongoExceptionHandler());
                    }
                })
                .bind()
                .syncUninterruptibly()
                .channel();
        } catch (RuntimeException e) {
            bossGroup.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            workerGroup.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            throw e;
        }
        InetSocketAddress address = (InetSocketAddress) serverChannel.localAddress();
        return new Running() {
            @Override
            public InetSocketAddress address() {
                return address;
            }

            @Override
            public void shutdownNow() {
                serverChannel.close().syncUninterruptibly();
                channelGroup.close().syncUninterruptibly();
                bossGroup.shutdownGracefully(0, 0, TimeUnit.SECONDS);
                workerGroup.shutdownGracefully(0, 0, TimeUnit.SECONDS);
                bossGroup.terminationFuture().syncUninterruptibly();
                workerGroup.terminationFuture().syncUninterruptibly();
                backend.close();
            }
        };
    }

    /** State shared by all connections: a count of completed writes and the parked getMores. */
    static final class AwaitData {
        /** Commands after which a change stream may have something new. */
        static final Set<String> WRITE_COMMANDS = Set.of(
            "insert", "update", "delete", "findAndModify", "findandmodify", "bulkWrite",
            "drop", "dropDatabase", "renameCollection", "create");
        static final long DEFAULT_AWAIT_MS = 1000;
        static final long MAX_AWAIT_MS = 60_000;
        static final int MAX_TRACKED_CURSORS = 100_000;

        final AtomicLong writes = new AtomicLong();
        /** cursor id -> `writes` as it was when a getMore that came back empty arrived. */
        final ConcurrentHashMap<Long, Long> idleSince = new ConcurrentHashMap<>();
        final Set<Parked> parked = ConcurrentHashMap.newKeySet();

        void wroteSomething() {
            writes.incrementAndGet();
            for (Parked p : parked) {
                p.release();
            }
        }
    }

    /** A getMore held back until a write or its await time. */
    static final class Parked {
        final AwaitData shared;
        final AwaitDataHandler handler;
        final ChannelHandlerContext ctx;
        final MongoMessage msg;
        final AtomicBoolean released = new AtomicBoolean();
        volatile ScheduledFuture<?> timeout;

        Parked(AwaitData shared, AwaitDataHandler handler, ChannelHandlerContext ctx, MongoMessage msg) {
            this.shared = shared;
            this.handler = handler;
            this.ctx = ctx;
            this.msg = msg;
        }

        void release() {
            if (!released.compareAndSet(false, true)) {
                return;
            }
            shared.parked.remove(this);
            ScheduledFuture<?> t = timeout;
            if (t != null) {
                t.cancel(false);
            }
            if (ctx.executor().inEventLoop()) {
                handler.runGetMore(ctx, msg);
            } else {
                ctx.executor().execute(() -> handler.runGetMore(ctx, msg));
            }
        }
    }

    /** Per connection; sits between the wire decoder and MongoDatabaseHandler. */
    static final class AwaitDataHandler extends ChannelDuplexHandler {
        private final AwaitData shared;
        /** Cursor id of the getMore being processed on this connection (0 = none) and `writes` at its arrival. */
        private long inflightCursor;
        private long inflightWrites;
        /** Whether the request being processed is a `hello` answered as isMaster. */
        private boolean inflightHello;

        AwaitDataHandler(AwaitData shared) {
            this.shared = shared;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
            if (!(msg instanceof MongoMessage)) {
                ctx.fireChannelRead(msg);
                return;
            }
            MongoMessage message = (MongoMessage) msg;
            Document command = message.getDocument();
            String name = command.isEmpty() ? "" : command.keySet().iterator().next();
            if ("getMore".equals(name) && command.get("getMore") instanceof Number) {
                long cursorId = ((Number) command.get("getMore")).longValue();
                Long idleAt = shared.idleSince.get(cursorId);
                if (idleAt != null && idleAt == shared.writes.get()) {
                    park(ctx, message, cursorId, awaitMillis(command));
                    return;
                }
                runGetMore(ctx, message);
                return;
            }
            if ("killCursors".equals(name) && command.get("cursors") instanceof Collection) {
                for (Object id : (Collection<?>) command.get("cursors")) {
                    if (id instanceof Number) {
                        shared.idleSince.remove(((Number) id).longValue());
                    }
                }
            }
            if ("hello".equals(name)) {
                // Not implemented by mongo-java-server; answer it as isMaster.
                Document isMaster = new Document("isMaster", 1);
                for (var entry : command.entrySet()) {
                    if (!"hello".equals(entry.getKey())) {
                        isMaster.put(entry.getKey(), entry.getValue());
                    }
                }
                inflightHello = true;
                try {
                    ctx.fireChannelRead(new MongoMessage(message.getChannel(), message.getHeader(), isMaster));
                } finally {
                    inflightHello = false;
                }
                return;
            }
            // MongoDatabaseHandler handles the request synchronously, so once this returns
            // a write is visible in the oplog.
            ctx.fireChannelRead(msg);
            if (AwaitData.WRITE_COMMANDS.contains(name) || ("aggregate".equals(name) && writesOut(command))) {
                shared.wroteSomething();
            }
        }

        /** An aggregate ending in $out or $merge. */
        private static boolean writesOut(Document command) {
            Object pipeline = command.get("pipeline");
            if (!(pipeline instanceof List) || ((List<?>) pipeline).isEmpty()) {
                return false;
            }
            Object last = ((List<?>) pipeline).get(((List<?>) pipeline).size() - 1);
            return last instanceof Document && (((Document) last).containsKey("$out") || ((Document) last).containsKey("$merge"));
        }

        void runGetMore(ChannelHandlerContext ctx, MongoMessage message) {
            if (!ctx.channel().isActive()) {
                return;
            }
            Object id = message.getDocument().get("getMore");
            inflightCursor = id instanceof Number ? ((Number) id).longValue() : 0;
            inflightWrites = shared.writes.get();
            try {
                ctx.fireChannelRead(message);
            } finally {
                inflightCursor = 0;
            }
        }

        private void park(ChannelHandlerContext ctx, MongoMessage message, long cursorId, long awaitMs) {
            Parked p = new Parked(shared, this, ctx, message);
            shared.parked.add(p);
            p.timeout = ctx.executor().schedule(p::release, awaitMs, TimeUnit.MILLISECONDS);
            // A write may have completed between the check and the add.
            Long idleAt = shared.idleSince.get(cursorId);
            if (idleAt == null || idleAt != shared.writes.get()) {
                p.release();
            }
        }

        private static long awaitMillis(Document command) {
            Object maxTimeMS = command.get("maxTimeMS");
            if (maxTimeMS instanceof Number) {
                long ms = ((Number) maxTimeMS).longValue();
                if (ms > 0) {
                    return Math.min(ms, AwaitData.MAX_AWAIT_MS);
                }
            }
            return AwaitData.DEFAULT_AWAIT_MS;
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
            if (inflightHello && msg instanceof MongoMessage) {
                Document reply = ((MongoMessage) msg).getDocument();
                if (reply.containsKey("ismaster")) {
                    reply.put("isWritablePrimary", reply.get("ismaster"));
                }
            }
            long cursorId = inflightCursor;
            if (cursorId != 0 && msg instanceof MongoMessage) {
                Object cursor = ((MongoMessage) msg).getDocument().get("cursor");
                if (cursor instanceof Document) {
                    Object batch = ((Document) cursor).get("nextBatch");
                    Object id = ((Document) cursor).get("id");
                    boolean open = id instanceof Number && ((Number) id).longValue() != 0;
                    if (open && batch instanceof List && ((List<?>) batch).isEmpty()) {
                        if (shared.idleSince.size() < AwaitData.MAX_TRACKED_CURSORS) {
                            shared.idleSince.put(cursorId, inflightWrites);
                        }
                    } else {
                        shared.idleSince.remove(cursorId);
                    }
                }
            }
            ctx.write(msg, promise);
        }
    }
}
