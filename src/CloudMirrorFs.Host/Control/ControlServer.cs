using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Control;

/// <summary>
/// The running instance's control socket: <c>status</c> and <c>drain</c> from other <c>cmfs</c> processes reach the
/// mounted volume here. Owner only: the socket file is mode 0600 and every peer's uid is checked (root or the owner).
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    private readonly MirrorVolume _volume;
    private readonly ILogger _log;
    private readonly List<Socket> _listeners;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly string? _socketFile;

    private ControlServer(MirrorVolume volume, ILogger log, List<Socket> listeners, string? socketFile)
    {
        _volume = volume;
        _log = log;
        _listeners = listeners;
        _socketFile = socketFile;
        _accepting = Task.WhenAll(listeners.Select(l => Task.Run(() => AcceptLoopAsync(l))));
    }

    /// <summary>
    /// Listens on the volume's control endpoints (the volume lock is held, so a leftover socket file is ours to
    /// replace). One that cannot be made is logged and left out; none at all is an error naming the state folder.
    /// </summary>
    public static ControlServer Start(MirrorVolume volume, ILogger log)
    {
        string stateDir = volume.Options.StateDir;
        var listeners = new List<Socket>();
        string? file = null;
        var problems = new List<string>();
        foreach (UnixDomainSocketEndPoint endpoint in ControlEndpoint.All(stateDir))
        {
            bool abstractName = ControlEndpoint.IsAbstract(endpoint);
            string? path = abstractName ? null : ControlEndpoint.SocketPath(stateDir);
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                if (path is not null)
                {
                    File.Delete(path);
                }
                listener.Bind(endpoint);
                if (path is not null && !OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
                listener.Listen(16);
                listeners.Add(listener);
                file ??= path;
            }
            catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
            {
                listener.Dispose();
                string where = path ?? "its abstract socket name";
                problems.Add($"{where}: {e.Message}");
                log.LogWarning("control socket: cannot listen at {Where} ({Message}){Rest}", where, e.Message,
                    abstractName ? "" : "; status and drain reach this instance by its abstract name");
            }
        }
        if (listeners.Count == 0)
        {
            throw new MirrorException(MirrorError.IoError,
                $"the control socket for the state folder {stateDir} cannot be made ({string.Join("; ", problems)}): 'cmfs status' and 'cmfs drain' could not reach this mount. Put volume.stateDir on a local disk's file system");
        }
        return new ControlServer(volume, log, listeners, file);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using (client)
        {
            try
            {
                if (!ControlEndpoint.PeerTrusted(client))
                {
                    _log.LogWarning("control socket: refused a client of another user");
                    return;
                }
                await using var stream = new NetworkStream(client, ownsSocket: false);
                using var reader = new StreamReader(stream, Encoding.UTF8);
                string? line = await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false);
                if (line is null)
                {
                    return;
                }
                ControlResponse response = await HandleAsync(line).ConfigureAwait(false);
                byte[] bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(response, ControlJson.Options) + "\n");
                await stream.WriteAsync(bytes, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the client went away, or we are stopping
            }
        }
    }

    private async Task<ControlResponse> HandleAsync(string line)
    {
        ControlRequest? request;
        try
        {
            request = JsonSerializer.Deserialize<ControlRequest>(line, ControlJson.Options);
        }
        catch (JsonException e)
        {
            return new ControlResponse { ExitCode = CmfsCli.UsageError, Error = $"bad control request: {e.Message}" };
        }
        switch (request?.Verb)
        {
            case "status":
                return new ControlResponse { ExitCode = CmfsCli.Ok, Status = _volume.GetStatus() };
            case "drain":
                bool drained = await _volume.DrainAsync(TimeSpan.FromSeconds(request.TimeoutSeconds), _stop.Token).ConfigureAwait(false);
                return new ControlResponse { ExitCode = drained ? CmfsCli.Ok : CmfsCli.Failed, Status = _volume.GetStatus() };
            case "resync":
                try
                {
                    _volume.RequestResync(request.Facet ?? "", request.Full);
                }
                catch (ArgumentException e)
                {
                    return new ControlResponse { ExitCode = CmfsCli.UsageError, Error = e.Message };
                }
                return new ControlResponse { ExitCode = CmfsCli.Ok, Status = _volume.GetStatus() };
            case "verify":
                try
                {
                    VerifyReport report = await _volume.VerifyAsync(request.Facet, request.Repair, cancellationToken: _stop.Token).ConfigureAwait(false);
                    return new ControlResponse { ExitCode = report.Clean ? CmfsCli.Ok : CmfsCli.Failed, Verify = report, Status = _volume.GetStatus() };
                }
                catch (MirrorException e)
                {
                    return new ControlResponse { ExitCode = e.Error == MirrorError.InvalidArgument ? CmfsCli.UsageError : CmfsCli.Failed, Error = e.Message };
                }
            case "facet-replace":
                try
                {
                    Options.FacetOptions replacement = Config.VolumeConfigLoader.Load(request.ConfigPath ?? "", needMount: false).Facets
                        .FirstOrDefault(f => f.Name == request.Facet)
                        ?? throw new MirrorException(MirrorError.InvalidArgument, $"{request.ConfigPath} has no facet named '{request.Facet}'");
                    await _volume.ReplaceLocalFacetAsync(replacement, _stop.Token).ConfigureAwait(false);
                    return new ControlResponse { ExitCode = CmfsCli.Ok, Status = _volume.GetStatus() };
                }
                catch (MirrorException e)
                {
                    return new ControlResponse { ExitCode = e.Error == MirrorError.InvalidArgument ? CmfsCli.UsageError : CmfsCli.Failed, Error = e.Message };
                }
                catch (Config.ConfigException e)
                {
                    return new ControlResponse { ExitCode = CmfsCli.UsageError, Error = $"config error: {e.Message}" };
                }
            default:
                return new ControlResponse { ExitCode = CmfsCli.UsageError, Error = $"unknown control verb '{request?.Verb}'" };
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (Socket listener in _listeners)
        {
            listener.Dispose();
        }
        await _accepting.ConfigureAwait(false);
        if (_socketFile is not null)
        {
            try
            {
                File.Delete(_socketFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The state folder's disk is gone: the next mount replaces the file.
            }
        }
        _stop.Dispose();
    }
}
