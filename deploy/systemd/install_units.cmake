# cmake --install and cpack: the units of deploy/systemd into PREFIX/lib/systemd/system, their
# ExecStart (written for /usr/local/bin/runbook) pointing at PREFIX/bin/runbook instead, and
# the services' Documentation naming the man page installed beside them.
# Set by CMakeLists.txt's install(CODE): RB_UNIT_SOURCE (this directory), RB_BINDIR (bin).
foreach(unit runbook-scheduler.service runbook-schedule.service runbook-schedule.timer)
  file(READ "${RB_UNIT_SOURCE}/${unit}" text)
  string(REPLACE "/usr/local/bin/runbook" "${CMAKE_INSTALL_PREFIX}/${RB_BINDIR}/runbook" text "${text}")
  if(unit MATCHES "\\.service$")
    if(text MATCHES "\nDocumentation=")
      string(REPLACE "\nDocumentation=" "\nDocumentation=man:runbook(1) " text "${text}")
    else()
      string(REGEX REPLACE "\n(Description=[^\n]*)\n" "\n\\1\nDocumentation=man:runbook(1)\n" text "${text}")
    endif()
  endif()
  set(dir "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  message(STATUS "Installing: ${dir}/${unit}")
  file(MAKE_DIRECTORY "${dir}")
  file(WRITE "${dir}/${unit}" "${text}")
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${dir}/${unit}")
endforeach()
