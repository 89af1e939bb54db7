-- KEMI (Lua) version of kamailio.cfg's request_route, for test.sh's KEMI
-- stage: the pipe is the R-URI user; pipes named fg_* go through
-- KSR.floodgate, the others through KSR.pipelimit (pipelimit's own exports,
-- or floodgate's alias of them). Under dialog.cfg (dialog.so loaded, so
-- KSR.dialog exists) the route is ksr_dialog_route below instead: concurrent
-- call limits with KSR.floodgate.fg_dlg_acquire*.
function ksr_request_route()
	if KSR.dialog ~= nil then
		-- dialog.cfg (dialog.so loaded): concurrent call limits
		return ksr_dialog_route()
	end
	if KSR.is_ACK() then
		return 1
	end
	local pipe = KSR.pv.get("$rU")
	local pl = KSR.pipelimit
	if string.sub(pipe, 1, 3) == "fg_" then
		pl = KSR.floodgate
	end
	local limit = KSR.pv.get("$hdr(X-PL-Limit)")
	local rc
	if limit == "-" then
		rc = pl.pl_check(pipe)
	else
		rc = pl.pl_check_limit(pipe, KSR.pv.get("$hdr(X-PL-Algo)"), tonumber(limit))
	end
	if rc < 0 then
		pl.pl_drop_retry(5)
		return 1
	end
	if pl.pl_active(pipe) ~= 1 then
		KSR.sl.sl_send_reply(500, "pl_active")
		return 1
	end
	KSR.sl.sl_send_reply(200, "OK")
	return 1
end

-- dialog.cfg's route in Lua (test.sh's KEMI stage for concurrent call
-- limits): a stateful proxy taking one slot per call on the R-URI user with
-- KSR.floodgate.fg_dlg_acquire (X-FG-Hold "-") or fg_dlg_acquire_hold, 503
-- over the max. The dialog module gives the slot back when the call ends.
function ksr_dialog_route()
	if KSR.siputils.has_totag() > 0 then
		if KSR.rr.loose_route() > 0 then
			KSR.tm.t_relay()
		elseif KSR.is_ACK() and KSR.tm.t_check_trans() > 0 then
			KSR.tm.t_relay()
		end
		return 1
	end
	if KSR.is_CANCEL() then
		if KSR.tm.t_check_trans() > 0 then
			KSR.tm.t_relay()
		end
		return 1
	end
	if not KSR.is_INVITE() then
		KSR.sl.sl_send_reply(405, "Method Not Allowed")
		return 1
	end
	if KSR.tm.t_newtran() < 0 then
		KSR.sl.sl_send_reply(500, "No transaction")
		return 1
	end
	KSR.dialog.dlg_manage()
	local key = KSR.pv.get("$rU")
	local max = tonumber(KSR.pv.get("$hdr(X-FG-Max)"))
	local hold = KSR.pv.get("$hdr(X-FG-Hold)")
	local function acquire()
		if hold == "-" then
			return KSR.floodgate.fg_dlg_acquire(key, max)
		end
		return KSR.floodgate.fg_dlg_acquire_hold(key, max, tonumber(hold))
	end
	local rc = acquire()
	if rc < 0 then
		KSR.tm.t_reply(503, "Too Many Calls")
		return 1
	end
	if KSR.pv.get("$hdr(X-FG-Twice)") == "yes" then
		-- as dialog.cfg: acquire again (2), release (1), again (-1), acquire (1)
		local r1 = acquire()
		local r2 = KSR.floodgate.fg_dlg_release(key)
		local r3 = KSR.floodgate.fg_dlg_release(key)
		local r4 = acquire()
		KSR.info("fg_dlg twice(" .. key .. "): " .. rc .. " " .. r1 .. " " .. r2
			.. " " .. r3 .. " " .. r4 .. "\n")
	end
	KSR.rr.record_route()
	KSR.setdsturi("sip:127.0.0.1:" .. KSR.pv.get("$hdr(X-FG-Dest)"))
	KSR.tm.t_relay()
	return 1
end
