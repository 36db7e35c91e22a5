using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace CloudMirrorFs.Host.Control;

/// <summary>Talks to a running instance over its control socket.</summary>
internal static class ControlClient
{
    /// <summary>
    /// Sends one request; null when no instance listens (no socket, or a stale one left by a kill). An endpoint held by
    /// a process of another user is not asked; <paramref name="warnings"/> is told.
    /// </summary>
    public static async Task<ControlResponse?> TrySendAsync(string stateDir, ControlRequest request, CancellationToken cancellationToken, TextWriter? warnings = null)
    {
        using Socket? socket = await ConnectAsync(stateDir, warnings, cancellationToken).ConfigureAwait(false);
        if (socket is null)
        {
            return null;
        }
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(request, ControlJson.Options) + "\n");
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string? line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        return line is null
            ? throw new MirrorException(MirrorError.IoError, $"the running cmfs instance for {stateDir} closed the control connection without answering")
            : JsonSerializer.Deserialize<ControlResponse>(line, ControlJson.Options);
    }

    /// <summary>The first endpoint that answers, or null (the socket file can be stale, or on a disk that died).</summary>
    private static async Task<Socket?> ConnectAsync(string stateDir, TextWriter? warnings, CancellationToken cancellationToken)
    {
        foreach (UnixDomainSocketEndPoint endpoint in ControlEndpoint.All(stateDir))
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                if (!ControlEndpoint.ServerTrusted(socket, stateDir))
                {
                    if (warnings is not null)
                    {
                        await warnings.WriteLineAsync(
                            $"cmfs: warning: the control socket {endpoint.ToString().Replace('\0', '@')} for {stateDir} is held by a process of another user (uid {ControlEndpoint.PeerUid(socket)}) than root, you or the state folder's owner, not by cmfs: not asked. Find it with 'ss -xlp | grep cmfs-' and stop it").ConfigureAwait(false);
                    }
                    socket.Dispose();
                    continue;
                }
                return socket;
            }
            catch (SocketException)
            {
                socket.Dispose();
            }
        }
        return null;
    }
}
